"""The Big-Little module (two or more branches at different resolutions) and the transition.

Branches run on the same input; each ends at the module's output channels. Before the
merge every branch is cropped on the fixed axis (time) to the shortest (deepest) branch
and resampled on free axes to the first (full-resolution) branch's size.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck
from .layers import ConvBNAct, Context, Resample, center_crop_to, time_context
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

    @property
    def context(self) -> Context:
        return self._context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        full = tuple(outs[0].shape[2:])
        outs = [self.resample(o, full) for o in outs]
        length = min(o.shape[2] for o in outs)
        aligned = [center_crop_to(o, (length, full[1])) for o in outs]
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
