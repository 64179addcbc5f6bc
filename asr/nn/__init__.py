"""Building blocks shared by the speech and image models (see asr.nn.policy)."""

from .biglittle import BigLittle, make_transition
from .blocks import BasicBlock, Bottleneck, Shortcut
from .fold import fold_batchnorm, fold_conv_bn
from .layers import ConvBNAct, Pool, Resample, SqueezeExcite, center_crop_to, time_context
from .policy import IMAGE, SPEECH, AxisPolicy

__all__ = [
    "AxisPolicy", "SPEECH", "IMAGE", "ConvBNAct", "Pool", "Resample", "SqueezeExcite",
    "center_crop_to", "time_context", "BasicBlock", "Bottleneck", "Shortcut", "BigLittle",
    "make_transition", "fold_batchnorm", "fold_conv_bn",
]
