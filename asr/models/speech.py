"""Speech acoustic models: ResNet-22, bL-ResNet-22 and bL-PYR-ResNet-22 (paper App. B).

Tensors are (batch, channels, frames, bins). No layer pads or strides in time, so a model
maps `frames + left + right` input frames to exactly `frames` output frames, with
(left, right) = `model.context` computed from its layers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..nn import SPEECH, BasicBlock, BigLittle, ConvBNAct, make_transition, time_context
from .registry import register_model


def convs_to_blocks(num_convs: int) -> list[int]:
    """Group convolutions into residual blocks of two, a last block of one if odd."""
    return [2] * (num_convs // 2) + [1] * (num_convs % 2)


def _down(bins: int) -> int:
    """Bins after a 3-wide, stride-2, pad-1 layer along frequency."""
    return (bins - 1) // 2 + 1


def residual_stack(in_ch: int, out_ch: int, num_convs: int, strided_blocks: int = 0) -> nn.Sequential:
    """`num_convs` 3x3 convolutions as basic blocks; the first `strided_blocks` blocks
    stride 2 in frequency (so the stack runs at 1/2**strided_blocks resolution)."""
    sizes = convs_to_blocks(num_convs)
    if strided_blocks > len(sizes):
        raise ValueError(f"{num_convs} convolutions give {len(sizes)} blocks, cannot stride {strided_blocks} times")
    blocks = []
    for i, n in enumerate(sizes):
        blocks.append(BasicBlock(in_ch if i == 0 else out_ch, out_ch, 2 if i < strided_blocks else 1,
                                 SPEECH, num_convs=n))
    return nn.Sequential(*blocks)


class SpeechResNet(nn.Module):
    """ResNet-22 family for dense per-frame classification.

    Args:
        stage_convs: 3x3 convolutions per stage in the baseline (6, 6, 6, 4 = 22).
        stage_mults: channel multiplier of each stage relative to `width`.
        bl_stages: the first `bl_stages` stages are Big-Little modules (0: plain ResNet).
            A transition (one strided 3x3 conv block) follows every module but the 4th;
            it takes one convolution from the stage's Big-Branch.
        alpha, beta: Little-Branch width divisor and depth divisor.
        merge: "add" or "cat".
        branches: branches per bL stage (2 = Big-Little; more = pyramid, bL-PYR).
        deep_mults: channel multiplier of the deepest branch per bL stage (bL-PYR: 2 in stage 1).
        num_classes: output states; in_bins: input frequency bins; width: channels of the
            first stage; head_dim: per-frame projection size; in_chans: input channels.

    Input (batch, in_chans, frames + left + right, in_bins) -> (batch, frames, num_classes).
    """

    def __init__(
        self,
        stage_convs: Sequence[int] = (6, 6, 6, 4),
        stage_mults: Sequence[int] = (1, 1, 1, 1),
        bl_stages: int = 0,
        alpha: int = 4,
        beta: int = 1,
        merge: str = "add",
        branches: Sequence[int] | None = None,
        deep_mults: Sequence[int] | None = None,
        num_classes: int = 32000,
        in_bins: int = 64,
        width: int = 128,
        head_dim: int = 512,
        in_chans: int = 3,
    ):
        super().__init__()
        n_stages = len(stage_convs)
        if len(stage_mults) != n_stages:
            raise ValueError("stage_mults and stage_convs differ in length")
        if not 0 <= bl_stages <= n_stages:
            raise ValueError(f"bl_stages must be in [0, {n_stages}]")
        branches = list(branches) if branches is not None else [2] * bl_stages
        deep_mults = list(deep_mults) if deep_mults is not None else [1] * bl_stages
        if len(branches) != bl_stages or len(deep_mults) != bl_stages:
            raise ValueError("branches/deep_mults need one value per bL stage")
        self.num_classes = num_classes
        self.hparams = {"stage_convs": list(stage_convs), "stage_mults": list(stage_mults), "bl_stages": bl_stages,
                        "alpha": alpha, "beta": beta, "merge": merge, "branches": branches,
                        "deep_mults": deep_mults, "width": width, "widths": [width * m for m in stage_mults],
                        "head_dim": head_dim, "in_bins": in_bins, "num_classes": num_classes}
        self.in_bins = in_bins
        self.in_chans = in_chans
        widths = [width * m for m in stage_mults]

        bins = _down(in_bins)
        layers: list[nn.Module] = [ConvBNAct(in_chans, widths[0], 3, 2, SPEECH)]
        prev = widths[0]
        for i in range(n_stages):
            ch = widths[i]
            if i < bl_stages:
                has_transition = i < n_stages - 1
                big_convs = stage_convs[i] - (1 if has_transition else 0)
                layers.append(self._bl_module(prev, ch, big_convs, branches[i], deep_mults[i], alpha, beta, merge))
                prev = ch
                if has_transition:
                    layers.append(make_transition(ch, widths[i + 1], 2, SPEECH))
                    prev = widths[i + 1]
                    bins = _down(bins)
            else:
                strided = 1 if (i > 0 and i > bl_stages) else 0
                layers.append(residual_stack(prev, ch, stage_convs[i], strided))
                prev = ch
                bins = _down(bins) if strided else bins
        self.trunk = nn.Sequential(*layers)
        self.out_bins = bins
        # Head: a convolution spanning all remaining bins (1 frame wide), then a per-frame linear
        # layer to states (a 1x1 convolution's weights; it writes (batch, frames, states) directly).
        self.head = ConvBNAct(prev, head_dim, (1, bins), policy=SPEECH, padding=(0, 0))
        self.classifier = nn.Linear(head_dim, num_classes)
        self._register_load_state_dict_pre_hook(_conv_classifier_to_linear)
        self._context = time_context(self.trunk)
        _init_weights(self)
        nn.init.kaiming_normal_(self.classifier.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.classifier.bias)

    @staticmethod
    def _bl_module(in_ch: int, ch: int, big_convs: int, n_branches: int, deep_mult: int, alpha: int,
                   beta: int, merge: str) -> BigLittle:
        """Branch j runs at 1/2**j frequency resolution; the last (deepest) one is the Big-Branch."""
        branches = []
        for j in range(n_branches):
            deepest = j == n_branches - 1
            if deepest:
                bch, convs = ch * deep_mult, big_convs
            else:
                bch, convs = max(1, ch // alpha), math.ceil(big_convs / beta)
            branch = residual_stack(in_ch, bch, convs, strided_blocks=j)
            if bch != ch:
                branch.append(ConvBNAct(bch, ch, 1, policy=SPEECH, act=False))
            branches.append(branch)
        return BigLittle(branches, ch, SPEECH, merge=merge, branch_channels=[ch] * n_branches)

    @property
    def context(self) -> tuple[int, int]:
        """Input frames consumed (left, right) around the output frames."""
        return self._context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_chans or x.shape[3] != self.in_bins:
            raise ValueError(f"expected (batch, {self.in_chans}, frames, {self.in_bins}), got {tuple(x.shape)}")
        left, right = self._context
        if x.shape[2] <= left + right:
            raise ValueError(f"input has {x.shape[2]} frames but the model needs more than its context "
                             f"{left}+{right}={left + right} frames to produce any output")
        h = self.head(self.trunk(x))  # (batch, head_dim, frames, 1)
        return self.classifier(h.squeeze(3).transpose(1, 2))  # (batch, frames, classes)


def _conv_classifier_to_linear(state_dict, prefix, *args) -> None:
    """Checkpoints written before the classifier was an nn.Linear hold it as a 1x1 Conv2d
    weight `(classes, head_dim, 1, 1)`: the same numbers, reshaped on load."""
    key = prefix + "classifier.weight"
    w = state_dict.get(key)
    if w is not None and w.dim() == 4:
        state_dict[key] = w.flatten(1)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_model("speech", baseline="resnet22")
def resnet22(**kw) -> SpeechResNet:
    """ResNet-22 (Table 3 line 1): stem + 22 unpadded-in-time 3x3 convs, constant width."""
    return SpeechResNet(**kw)


@register_model("speech", baseline="resnet22")
def bl_resnet22_a4_b1(**kw) -> SpeechResNet:
    return SpeechResNet(**{"bl_stages": 4, "alpha": 4, "beta": 1, **kw})


@register_model("speech", baseline="resnet22")
def bl_resnet22_a4_b2(**kw) -> SpeechResNet:
    return SpeechResNet(**{"bl_stages": 4, "alpha": 4, "beta": 2, **kw})


@register_model("speech", baseline="resnet22")
def bl_resnet22_a4_b3(**kw) -> SpeechResNet:
    return SpeechResNet(**{"bl_stages": 4, "alpha": 4, "beta": 3, **kw})


@register_model("speech", baseline="resnet22")
def bl_resnet22_a2_b3(**kw) -> SpeechResNet:
    """alpha=2, beta=3: stage 4 stays a plain ResNet stage."""
    return SpeechResNet(**{"bl_stages": 3, "alpha": 2, "beta": 3, **kw})


@register_model("speech", baseline="resnet22")
def bl_resnet22_a4_b1_cat(**kw) -> SpeechResNet:
    return SpeechResNet(**{"bl_stages": 4, "alpha": 4, "beta": 1, "merge": "cat", **kw})


@register_model("speech", baseline="resnet22")
def bl_pyr_resnet22_a4_b1(**kw) -> SpeechResNet:
    """Pyramid: 4, 3, 2 branches in stages 1-3 (deepest of stage 1 doubled), plain stage 4."""
    return SpeechResNet(**{"bl_stages": 3, "alpha": 4, "beta": 1, "branches": (4, 3, 2),
                           "deep_mults": (2, 1, 1), **kw})
