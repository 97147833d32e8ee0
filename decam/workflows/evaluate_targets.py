"""``decam evaluate --targets``: which classes each image is explained for.

``topK`` names the model's K most likely classes on each image, ``3,17`` the same classes on every
image; the first is the class decam's one search is scored on (rank 1). With ``--labels`` only
``topK`` is allowed: the label's class comes first, then the model's most likely other classes, K
in all (a fixed list and a label per image would name two different first classes).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from decam.errors import ConfigError
from decam.search.targets import resolve_targets


def top_k(spec: str) -> int | None:
    """K of a ``topK`` spec, else None."""
    found = re.fullmatch(r"top(\d+)", spec.strip().lower())
    return int(found[1]) if found else None


def check_targets(spec: str, with_labels: bool = False) -> str:
    """``spec`` stripped when it is ``topK`` (K ≥ 1) or a list of class indices such as ``3,17``, and
    allowed together with a labels CSV when ``with_labels``; else a one-line ConfigError."""
    text = spec.strip().lower()
    k = top_k(text)
    if k is None and not re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
        raise ConfigError(f"--targets {spec!r}: expected topK (top3) or class indices (3,17)")
    if k == 0:
        raise ConfigError(f"--targets {spec!r}: expected top1 or more")
    if k is None and with_labels:
        raise ConfigError(f"--targets {spec} and --labels both name the classes: give one of them, or "
                          "--targets topK with --labels (the label's class first, then the model's top classes)")
    return text


def target_chooser(spec: str | None, with_labels: bool = False) -> Callable[[torch.Tensor, int | None], list[int]] | None:
    """For :class:`~decam.evaluation.scoring.ImageScorer`: ``(logits, label or None) → classes``, the
    searched one first, as the module docstring says; None (one class per image) when ``spec`` is None.
    ``with_labels``: the images have labels (a ConfigError unless ``spec`` is ``topK``)."""
    if spec is None:
        return None
    spec = check_targets(spec, with_labels)

    def choose(logits: torch.Tensor, label: int | None) -> list[int]:
        targets = resolve_targets(spec, logits)  # a K the model has not: the image's InputError
        if label is None:
            return targets
        ranked = logits.topk(min(len(targets) + 1, logits.numel())).indices.tolist()
        return [label] + [t for t in ranked if t != label][: len(targets) - 1]

    return choose
