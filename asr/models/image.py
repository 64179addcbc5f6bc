"""Image classifiers: ResNet/ResNeXt/SE-ResNeXt and their Big-Little versions (paper App. A).

Built from the same asr.nn blocks as the speech models, with the IMAGE axis policy
(stride, padding and upsampling on both axes). Input (batch, 3, H, W) -> (batch, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..nn import IMAGE, BigLittle, Bottleneck, ConvBNAct, make_transition
from .registry import register_model
from .speech import _init_weights

STAGE_CHANNELS = (256, 512, 1024, 2048)


def inner_width(out_ch: int, groups: int, group_width: int) -> int:
    """Bottleneck inner width: out/4 for ResNet (groups=1, group_width=64);
    groups * group_width * out/256 for ResNeXt (32x4d: out/2)."""
    return groups * group_width * out_ch // 256


def bottleneck_stage(in_ch: int, out_ch: int, blocks: int, stride: int, groups: int, group_width: int,
                     se: bool) -> nn.Sequential:
    inner = inner_width(out_ch, groups, group_width)
    return nn.Sequential(*[
        Bottleneck(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1, IMAGE, inner=inner,
                   groups=groups, se=se)
        for i in range(blocks)
    ])


class _Classifier(nn.Module):
    def _finish(self, in_ch: int, num_classes: int) -> None:
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_ch, num_classes)
        self.num_classes = num_classes
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class ImageResNet(_Classifier):
    """Plain ResNet / ResNeXt / SE-ResNeXt: 7x7/2 stem, 3x3/2 max-pool, four bottleneck stages."""

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), groups: int = 1, group_width: int = 64,
                 se: bool = False, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        self.in_chans = in_chans
        feats: list[nn.Module] = [ConvBNAct(in_chans, 64, 7, 2, IMAGE), nn.MaxPool2d(3, 2, 1)]
        prev = 64
        for i, (n, ch) in enumerate(zip(layers, STAGE_CHANNELS)):
            feats.append(bottleneck_stage(prev, ch, n, 1 if i == 0 else 2, groups, group_width, se))
            prev = ch
        self.features = nn.Sequential(*feats)
        self._finish(prev, num_classes)


class BLImageResNet(_Classifier):
    """bL-ResNet / bL-ResNeXt / bL-SE-ResNeXt.

    Stem: 7x7/2 conv, then a Big-Little stem (big: 3x3/2; little: 3x3, 3x3/2 at 64/alpha,
    1x1 to 64; added) and a 1x1 conv. Stages 1-3: a Big-Little module (Big-Branch:
    blocks-1 bottlenecks at half resolution, upsampled; Little-Branch: max(1, blocks//beta - 1)
    bottlenecks at 1/alpha width and cardinality, then 1x1 to the stage width), then a
    one-block transition (stride 2, 2, 1). Stage 4: plain bottleneck stage.
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), alpha: int = 2, beta: int = 4, groups: int = 1,
                 group_width: int = 64, se: bool = False, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        self.in_chans = in_chans
        stem_little = max(1, 64 // alpha)
        stem = BigLittle(
            [nn.Sequential(ConvBNAct(64, stem_little, 3, 1, IMAGE), ConvBNAct(stem_little, stem_little, 3, 2, IMAGE),
                           ConvBNAct(stem_little, 64, 1, 1, IMAGE, act=False)),
             ConvBNAct(64, 64, 3, 2, IMAGE, act=False)],
            64, IMAGE)
        feats: list[nn.Module] = [ConvBNAct(in_chans, 64, 7, 2, IMAGE), stem, ConvBNAct(64, 64, 1, 1, IMAGE)]
        prev = 64
        for i, (n, ch) in enumerate(zip(layers[:3], STAGE_CHANNELS)):
            inner = inner_width(ch, groups, group_width)
            big = bottleneck_stage(prev, ch, n - 1, 2, groups, group_width, se)
            lch, lgroups = ch // alpha, max(1, groups // alpha)
            little = nn.Sequential(*[
                Bottleneck(prev if k == 0 else lch, lch, 1, IMAGE, inner=inner // alpha, groups=lgroups, se=se)
                for k in range(max(1, n // beta - 1))
            ])
            little.append(ConvBNAct(lch, ch, 1, 1, IMAGE, act=False))
            feats.append(BigLittle([little, big], ch, IMAGE))
            feats.append(make_transition(ch, ch, 2 if i < 2 else 1, IMAGE, kind="bottleneck", inner=inner,
                                         groups=groups, se=se))
            prev = ch
        feats.append(bottleneck_stage(prev, STAGE_CHANNELS[3], layers[3], 2, groups, group_width, se))
        self.features = nn.Sequential(*feats)
        self._finish(STAGE_CHANNELS[3], num_classes)


# --- plain baselines -------------------------------------------------------------------
@register_model("image")
def resnet50(**kw): return ImageResNet((3, 4, 6, 3), **kw)


@register_model("image")
def resnet101(**kw): return ImageResNet((3, 4, 23, 3), **kw)


@register_model("image")
def resnet152(**kw): return ImageResNet((3, 8, 36, 3), **kw)


@register_model("image")
def resnext50_32x4d(**kw): return ImageResNet((3, 4, 6, 3), groups=32, group_width=4, **kw)


@register_model("image")
def resnext101_32x4d(**kw): return ImageResNet((3, 4, 23, 3), groups=32, group_width=4, **kw)


@register_model("image")
def resnext101_64x4d(**kw): return ImageResNet((3, 4, 23, 3), groups=64, group_width=4, **kw)


@register_model("image")
def seresnext50_32x4d(**kw): return ImageResNet((3, 4, 6, 3), groups=32, group_width=4, se=True, **kw)


@register_model("image")
def seresnext101_32x4d(**kw): return ImageResNet((3, 4, 23, 3), groups=32, group_width=4, se=True, **kw)


# --- Big-Little ------------------------------------------------------------------------
@register_model("image", baseline="resnet50")
def bl_resnet50(**kw): return BLImageResNet((3, 4, 6, 3), **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="resnet50")
def bl_resnet50_a2_b2(**kw): return BLImageResNet((3, 4, 6, 3), **{"alpha": 2, "beta": 2, **kw})


@register_model("image", baseline="resnet50")
def bl_resnet50_a4_b2(**kw): return BLImageResNet((3, 4, 6, 3), **{"alpha": 4, "beta": 2, **kw})


@register_model("image", baseline="resnet50")
def bl_resnet50_a4_b4(**kw): return BLImageResNet((3, 4, 6, 3), **{"alpha": 4, "beta": 4, **kw})


@register_model("image", baseline="resnet101")
def bl_resnet101(**kw): return BLImageResNet((4, 8, 18, 3), **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="resnet152")
def bl_resnet152(**kw): return BLImageResNet((5, 12, 30, 3), **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="resnext50_32x4d")
def bl_resnext50_32x4d(**kw):
    return BLImageResNet((3, 4, 6, 3), groups=32, group_width=4, **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="resnext101_32x4d")
def bl_resnext101_32x4d(**kw):
    return BLImageResNet((4, 8, 18, 3), groups=32, group_width=4, **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="resnext101_64x4d")
def bl_resnext101_64x4d(**kw):
    return BLImageResNet((4, 8, 18, 3), groups=64, group_width=4, **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="seresnext50_32x4d")
def bl_seresnext50_32x4d(**kw):
    return BLImageResNet((3, 4, 6, 3), groups=32, group_width=4, se=True, **{"alpha": 2, "beta": 4, **kw})


@register_model("image", baseline="seresnext101_32x4d")
def bl_seresnext101_32x4d(**kw):
    return BLImageResNet((4, 8, 18, 3), groups=32, group_width=4, se=True, **{"alpha": 2, "beta": 4, **kw})
