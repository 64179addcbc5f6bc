"""Basic layers: conv+BN+act with a per-axis policy, centre crop, upsampling, SE.

Every layer that changes the length of axis0 (time) exposes `context -> (left, right)`:
the number of input frames it consumes on each side. `time_context(module)` sums them
through containers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .policy import AxisPolicy, _pair

Context = tuple[int, int]


def time_context(module: nn.Module) -> Context:
    """Frames consumed on (left, right) of axis0 by `module`.

    Modules that change the length define a `context` property; `nn.Sequential` sums
    its children; anything else (BN, activations, pooling along frequency) is (0, 0).
    """
    if hasattr(module, "context"):
        return tuple(module.context)  # type: ignore[return-value]
    if isinstance(module, nn.Sequential):
        left = right = 0
        for child in module:
            cl, cr = time_context(child)
            left, right = left + cl, right + cr
        return left, right
    return 0, 0


def center_crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop axes 2 and 3 of `x` (batch, C, a0, a1) centrally to `size`; never pads."""
    out = x
    for dim, target in zip((2, 3), size):
        cur = out.shape[dim]
        if cur < target:
            raise ValueError(f"cannot crop axis {dim} of length {cur} up to {target}")
        if cur > target:
            start = (cur - target) // 2
            out = out.narrow(dim, start, target)
    return out


class ConvBNAct(nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU (optional), padded/strided only on free axes.

    (batch, in_ch, a0, a1) -> (batch, out_ch, a0', a1'). On a fixed axis a0' = a0 - (k - 1).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        policy: AxisPolicy | None = None,
        groups: int = 1,
        act: bool = True,
        norm: bool = True,
        padding: tuple[int, int] | None = None,
    ):
        super().__init__()
        if policy is None:
            raise ValueError("ConvBNAct needs an AxisPolicy")
        k = _pair(kernel)
        pad = policy.padding(k) if padding is None else padding
        if not policy.free[0] and pad[0] != 0:
            raise ValueError("padding along a fixed axis is not allowed")
        self.kernel = k
        self.pad0 = pad[0]
        self.conv = nn.Conv2d(in_ch, out_ch, k, policy.stride(stride), pad, groups=groups, bias=not norm)
        self.bn = nn.BatchNorm2d(out_ch) if norm else nn.Identity()
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    @property
    def context(self) -> Context:
        shrink = self.kernel[0] - 1 - 2 * self.pad0
        return shrink // 2, shrink - shrink // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Resample(nn.Module):
    """Bilinear resampling of the free axes to an explicit target size (odd sizes work).

    forward(x, size) with size = (a0, a1) of the reference; fixed axes keep x's size.
    When only axis1 changes (speech: frequency), bilinear resampling is a fixed linear map of
    that axis, applied as one matrix product `x @ M` with `M` (a1_in, a1_out) taken from
    `F.interpolate` itself (same weights, float rounding aside): on the CPU several times faster
    than `upsample_bilinear2d`, forward and backward, and it computes only at the target size.
    """

    def __init__(self, policy: AxisPolicy):
        super().__init__()
        self.policy = policy
        self._maps: dict[tuple, torch.Tensor] = {}  # (a1_in, a1_out, dtype, device) -> M; not state

    def axis1_map(self, n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
        """`(n_in, n_out)` matrix of bilinear (align_corners=False) resampling along axis1."""
        key = (n_in, n_out, like.dtype, like.device)
        m = self._maps.get(key)
        if m is None:
            eye = torch.eye(n_in, dtype=torch.float64)[None, None]  # (1, 1, n_in, n_in): row i = e_i
            m = F.interpolate(eye, size=(n_in, n_out), mode="bilinear", align_corners=False)[0, 0]
            m = self._maps[key] = m.to(like.dtype).to(like.device)
        return m

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out_size = self.policy.resample_size(tuple(x.shape[2:]), tuple(size))
        if tuple(x.shape[2:]) == out_size:
            return x
        if out_size[0] == x.shape[2]:  # axis1 only
            return torch.matmul(x, self.axis1_map(x.shape[3], out_size[1], x))
        return F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)


def crop_time(x: torch.Tensor, drop: Context) -> torch.Tensor:
    """`x` (batch, C, a0, a1) without `drop` = (left, right) frames of axis0 (time)."""
    left, right = drop
    if left == right == 0:
        return x
    return x.narrow(2, left, x.shape[2] - left - right)


def centre_drop(total: int) -> Context:
    """(left, right) frames that a centre crop removes when it shortens an axis by `total`."""
    return total // 2, total - total // 2


class Pool(nn.Module):
    """Average pooling (k x k, stride s, zero padding counted) on free axes only; used on
    strided shortcuts. `self.pool` holds the geometry; forward computes the same average as
    a depthwise convolution with constant weights, several times faster than avg_pool2d on
    CPU. (batch, C, a0, a1) -> (batch, C, a0', a1')."""

    def __init__(self, stride: int, policy: AxisPolicy, kernel: int = 3):
        super().__init__()
        k = policy.pool_kernel(kernel)
        self.pool = nn.AvgPool2d(k, policy.stride(stride), policy.padding(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k0, k1 = self.pool.kernel_size
        channels = x.shape[1]
        weight = x.new_full((channels, 1, k0, k1), 1.0 / (k0 * k1))
        return F.conv2d(x, weight, stride=self.pool.stride, padding=self.pool.padding, groups=channels)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (reduction r). Shape-preserving."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s), inplace=True)))
