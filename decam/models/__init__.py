"""Black boxes: a name or any callable → :class:`LoadedModel`, and the fast path that queries it.

Plugin layer: model adapters register in ``MODELS`` (entry-point group ``decam.models``);
``runtime`` holds the one forward path every query-based method shares (precision, layout,
BatchNorm folding, compile), so seconds per image compare methods, not implementations.
"""

from decam.models.zoo import (IMAGENET_MEAN, IMAGENET_STD, MODELS, LoadedModel, Normalized, bf16_is_fast,
                              efficientnet_lite0, from_callable, imagenet_classes, load_model, resolve_precision,
                              search_forward, torchvision_model, tune_allocator)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODELS", "LoadedModel", "Normalized", "bf16_is_fast",
           "efficientnet_lite0", "from_callable", "imagenet_classes", "load_model", "resolve_precision",
           "search_forward", "torchvision_model", "tune_allocator"]
