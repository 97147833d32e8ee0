"""What the out-of-process adapters (``onnx:``, ``http(s)://``) share: reading their image options
(input size, crop, labels) into the fields of a :class:`~decam.models.LoadedModel`, and the
counters a remote black box keeps beside its queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from decam.errors import ConfigError, ModelUnavailableError
from decam.models.loaded import LoadedModel, imagenet_classes

DEFAULT_SIDE = 224
DEFAULT_CROP = 0.875
"""ImageNet's evaluation convention: the shorter side resized to input / 0.875 (256 for 224), then a centre crop."""


def input_size(value: Sequence[int] | int | None, what: str = "model_options.input_size") -> tuple[int, int] | None:
    """``[H, W]``, ``[S]`` or ``S`` → ``(H, W)``; None stays None; a ConfigError for anything else."""
    if value is None:
        return None
    items = [value] if isinstance(value, int) else list(value) if isinstance(value, Sequence) else None
    if (not items or len(items) > 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in items)
            or not all(8 <= v <= 8000 for v in items)):
        raise ConfigError(f"{what}={value!r}: expected [height, width] (or one side) in pixels, 8-8000")
    return (items[0], items[-1])


def resize_for(size: tuple[int, int], crop: float | None) -> int:
    """The shorter side an image is resized to before its centre crop to ``size``."""
    return round(min(size) / (crop if crop is not None else DEFAULT_CROP))


def normalization(mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[tuple[float, ...], ...] | None:
    """``(mean, std)`` of three channels (one value: all three) or None when both are null."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ConfigError("model_options.mean and model_options.std go together: set both, or neither "
                          "(pixels in [0, 1])")
    out = []
    for key, value in (("mean", mean), ("std", std)):
        items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        if len(items) == 1:
            items *= 3
        if len(items) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise ConfigError(f"model_options.{key}={value!r}: expected 3 numbers (or 1 for all channels)")
        if key == "std" and not all(v > 0 for v in items):
            raise ConfigError(f"model_options.std={value!r}: expected positive numbers")
        out.append(tuple(float(v) for v in items))
    return out[0], out[1]


def class_names(labels: str | None, classes: int | None) -> list[str] | None:
    """``labels``: ``imagenet``, or a text file with one class name per line; None: ImageNet's names
    for a model with 1000 outputs, else none (classes are shown as numbers)."""
    if labels is None:
        return imagenet_classes() if classes == 1000 else None
    if labels == "imagenet":
        return imagenet_classes()
    path = Path(labels)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ModelUnavailableError(f"model_options.labels={labels!r}: cannot read it ({e})") from None
    if classes is not None and len(names) != classes:
        raise ConfigError(f"model_options.labels={labels!r} names {len(names)} classes; the model has {classes}")
    return names


def remote_counters(model: LoadedModel) -> dict[str, int]:
    """The counters of a black box behind a connection (``images``, ``requests``, ``retries``); {} for others."""
    counters = getattr(model.forward, "counters", None)
    return counters.as_dict() if counters is not None and hasattr(counters, "as_dict") else {}
