"""Model registry: `create_model(name, **overrides)`, `list_models()`.

Speech models (asr.models.speech) map (batch, 3, frames + left + right, bins) to
(batch, frames, num_classes) logits and expose `model.context -> (left, right)`.
Image models (asr.models.image) map (batch, 3, H, W) to (batch, num_classes).
"""

from . import image, speech  # noqa: F401  (registers the models)
from .image import BLImageResNet, ImageResNet
from .registry import create_model, get_entry, list_models, register_model
from .speech import SpeechResNet

__all__ = ["create_model", "list_models", "register_model", "get_entry", "SpeechResNet",
           "ImageResNet", "BLImageResNet"]
