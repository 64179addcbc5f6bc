"""The Big-Little module (two or more branches at different resolutions) and the transition.

Branches run on the same input; each ends at the module's output channels. On the fixed axis
(time) every branch's input is centre-cropped so that all branches end at the deepest
branch's length (the same numbers as cropping the outputs, with no frames computed only to be
thrown away); on free axes every branch is resampled to the first (full-resolution) one's size.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck
from .layers import ConvBNAct, Context, Resample, center_crop_to, centre_drop, crop_time, time_context
from .policy import AxisPolicy


class BigLittle(nn.Module):
    """Multi-branch module: branches[0] is at full resolution (the Little-Branch).

    merge="add": unit-weight sum then ReLU. merge="cat": concatenate along channels, then
    1x1 conv + BN + ReLU back to `out_ch`.
    (batch, in_ch, a0, a1) -> (batch, out_ch, a0 - context, a1).
    """

    def __init__(self, branches: list[nn.Module], out_ch: int, policy: AxisPolicy, merge: str = "add",
                 branch_channels: list[int] | None = None):
        super().__init__()
        if merge not in ("add", "cat"):
            raise ValueError(f"unknown merge {merge!r} (add, cat)")
        self.branches = nn.ModuleList(branches)
        self.resample = Resample(policy)
        self.merge = merge
        if merge == "cat":
            if branch_channels is None:
                raise ValueError("merge='cat' needs branch_channels")
            self.fuse = ConvBNAct(sum(branch_channels), out_ch, 1, policy=policy)
        else:
            self.fuse = nn.ReLU(inplace=True)
        ctx = [time_context(b) for b in self.branches]
        self._context = (max(c[0] for c in ctx), max(c[1] for c in ctx))
        deepest = max(sum(c) for c in ctx)
        self._drops = [centre_drop(deepest - sum(c)) for c in ctx]  # input frames each branch skips

    @property
    def context(self) -> Context:
        return self._context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(crop_time(x, d)) for b, d in zip(self.branches, self._drops)]
        full = tuple(outs[0].shape[2:])
        aligned = [center_crop_to(self.resample(o, full), full) for o in outs]
        if self.merge == "add":
            y = aligned[0]
            for o in aligned[1:]:
                y = y + o
            return self.fuse(y)
        return self.fuse(torch.cat(aligned, dim=1))


def make_transition(in_ch: int, out_ch: int, stride: int, policy: AxisPolicy, kind: str = "basic",
                    **block_kwargs) -> nn.Module:
    """Transition layer between Big-Little modules: one residual block that strides and
    changes channels. kind="basic": a single 3x3 convolution (speech); "bottleneck": one
    bottleneck block (images)."""
    if kind == "basic":
        return BasicBlock(in_ch, out_ch, stride, policy, num_convs=1)
    if kind == "bottleneck":
        return Bottleneck(in_ch, out_ch, stride, policy, **block_kwargs)
    raise ValueError(f"unknown transition kind {kind!r}")
