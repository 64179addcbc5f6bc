"""Residual blocks (basic and bottleneck; grouped and SE variants) and their shortcut.

All blocks take (batch, in_ch, a0, a1) and return (batch, out_ch, a0', a1'). On a fixed
axis (speech time) the shortcut is centre-cropped to the residual branch's length.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNAct, Context, Pool, SqueezeExcite, center_crop_to, centre_drop, crop_time, time_context
from .policy import AxisPolicy


class Shortcut(nn.Module):
    """Identity, or average pooling when strided then 1x1 conv + BN when channels change."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, policy: AxisPolicy):
        super().__init__()
        layers: list[nn.Module] = []
        if stride != 1:
            layers.append(Pool(stride, policy))
        if in_ch != out_ch:
            layers.append(ConvBNAct(in_ch, out_ch, 1, policy=policy, act=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Residual(nn.Module):
    """body(x) + shortcut(x), then ReLU. Subclasses build `self.body` and `self.shortcut`, then
    call `self._finish()`.

    On the fixed axis (time) the shortcut's input is centre-cropped to the body's output length
    before the shortcut runs (the same numbers as cropping its output: the shortcut has no time
    context), so a strided shortcut computes no frames that are thrown away.
    """

    body: nn.Sequential
    shortcut: Shortcut

    def _finish(self) -> None:
        self._context = time_context(self.body)
        self._drop = centre_drop(sum(self._context))
        self.relu = nn.ReLU(inplace=True)

    @property
    def context(self) -> Context:
        return self._context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        s = center_crop_to(self.shortcut(crop_time(x, self._drop)), tuple(y.shape[2:]))
        return self.relu(y + s)


class BasicBlock(_Residual):
    """`num_convs` 3x3 conv+BN (1 or 2, the first strided) with a residual connection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, policy: AxisPolicy | None = None,
                 num_convs: int = 2, kernel: int = 3):
        super().__init__()
        if num_convs < 1:
            raise ValueError("a basic block needs at least one convolution")
        convs: list[nn.Module] = []
        for i in range(num_convs):
            last = i == num_convs - 1
            convs.append(ConvBNAct(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1,
                                   policy, act=not last))
        self.body = nn.Sequential(*convs)
        self.shortcut = Shortcut(in_ch, out_ch, stride, policy)
        self._finish()


class Bottleneck(_Residual):
    """1x1 (in->inner) -> 3x3 grouped, strided (inner->inner) -> 1x1 (inner->out) [-> SE].

    `inner` defaults to out_ch // 4 (ResNet); ResNeXt passes groups * group width.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, policy: AxisPolicy | None = None,
                 inner: int | None = None, groups: int = 1, se: bool = False, se_reduction: int = 16):
        super().__init__()
        inner = out_ch // 4 if inner is None else inner
        if se and not policy.free[0]:
            raise ValueError("squeeze-excitation pools over axis0 (time): it would break the fixed-axis "
                             "(streaming) property of this policy")
        if inner % groups:
            raise ValueError(f"inner width {inner} not divisible by groups {groups}")
        layers: list[nn.Module] = [
            ConvBNAct(in_ch, inner, 1, 1, policy),
            ConvBNAct(inner, inner, 3, stride, policy, groups=groups),
            ConvBNAct(inner, out_ch, 1, 1, policy, act=False),
        ]
        if se:
            layers.append(SqueezeExcite(out_ch, se_reduction))
        self.body = nn.Sequential(*layers)
        self.shortcut = Shortcut(in_ch, out_ch, stride, policy)
        self._finish()
