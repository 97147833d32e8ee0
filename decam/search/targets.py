"""Which classes a search explains: ``None`` (top-1), a class index, a list, ``"3,17"`` or ``"top3"``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Union

import torch

from decam.errors import InputError

TargetSpec = Union[int, Sequence[int], str, None]


def resolve_targets(spec: TargetSpec, logits: torch.Tensor) -> list[int]:
    """The class indices ``spec`` names, given the unmasked image's ``logits`` ``(C,)``; the first is
    the one the search is scored on. Unknown forms, duplicates and classes the model does not have
    are a one-line InputError."""
    n = logits.numel()
    if spec is None:
        targets = [int(logits.argmax())]
    elif isinstance(spec, str):
        text = spec.strip().lower()
        top = re.fullmatch(r"top(\d+)", text)
        if top:
            k = int(top[1])
            if not 1 <= k <= n:
                raise InputError(f"target {spec!r}: expected top1 .. top{n}")
            targets = logits.topk(k).indices.tolist()
        elif re.fullmatch(r"-?\d+(\s*,\s*-?\d+)*", text):
            targets = [int(t) for t in text.split(",")]
        else:
            raise InputError(f"target {spec!r}: expected a class index, a list such as 3,17, or topK such as top3")
    elif isinstance(spec, (int, torch.Tensor)) or hasattr(spec, "__index__"):
        targets = [int(spec)]
    else:
        targets = [int(t) for t in spec]
    if not targets:
        raise InputError("no target class given")
    if len(set(targets)) != len(targets):
        raise InputError(f"target {spec!r} names a class twice")
    for t in targets:
        if not 0 <= t < n:
            raise InputError(f"target {t} is outside the model's {n} classes (0..{n - 1})")
    return targets
