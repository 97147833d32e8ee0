"""Black boxes: a name or any callable → :class:`LoadedModel`, and the fast path that queries it.

Plugin layer: model adapters register in ``MODELS`` (entry-point group ``decam.models``);
``runtime`` holds the one forward path every query-based method shares (precision, layout,
BatchNorm folding, compile) and ``runner`` counts and checks every query, so seconds per image
compare methods, not implementations.
"""

from decam.models.allocator import tune_allocator
from decam.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Normalized, from_callable
from decam.models.remote import remote_counters
from decam.models.runner import ModelRunner, check_logits
from decam.models.runtime import FastForward, ForwardSpec, autocast, bf16_is_fast, module_forward, resolve_precision
from decam.models.zoo import MODELS, efficientnet_lite0, imagenet_classes, load_model, torchvision_model

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODELS", "FastForward", "ForwardSpec", "LoadedModel", "ModelRunner",
           "Normalized", "autocast", "bf16_is_fast", "check_logits", "efficientnet_lite0", "from_callable",
           "imagenet_classes", "load_model", "module_forward", "remote_counters", "resolve_precision", "torchvision_model",
           "tune_allocator"]
