"""Axis policy: which of the two spatial axes may stride, pad and be resampled.

Tensors are `(batch, channels, axis0, axis1)`. For speech axis0 is time (frames) and
axis1 is frequency (bins); for images they are height and width. The same layers serve
both: only the policy differs.
"""

from __future__ import annotations

from dataclasses import dataclass


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass(frozen=True)
class AxisPolicy:
    """Per-axis permissions. `free[i]` True: axis i may stride, pad and be upsampled/pooled.

    An axis that is not free keeps full resolution: convolutions do not pad it (a kernel
    of size k shortens it by k-1) and never stride it, pooling uses a kernel of 1 on it.
    """

    free: tuple[bool, bool]
    name: str = ""

    def stride(self, s: int | tuple[int, int]) -> tuple[int, int]:
        s = _pair(s)
        return tuple(si if ok else 1 for si, ok in zip(s, self.free))  # type: ignore[return-value]

    def padding(self, k: int | tuple[int, int]) -> tuple[int, int]:
        k = _pair(k)
        return tuple(ki // 2 if ok else 0 for ki, ok in zip(k, self.free))  # type: ignore[return-value]

    def pool_kernel(self, k: int) -> tuple[int, int]:
        return tuple(k if ok else 1 for ok in self.free)  # type: ignore[return-value]

    def resample_size(self, x_size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
        """Output size when resampling `x_size` toward `target`: fixed axes keep their size."""
        return tuple(t if ok else s for s, t, ok in zip(x_size, target, self.free))  # type: ignore[return-value]


#: Speech: axis0 = time (never strided, padded or resampled), axis1 = frequency.
SPEECH = AxisPolicy(free=(False, True), name="speech")
#: Images: both axes behave alike.
IMAGE = AxisPolicy(free=(True, True), name="image")
