"""Resumable searches: a search's state after each generation, written atomically, checked when read.

The state is plain tensors, numbers and strings (read back with ``torch.load(weights_only=True)``,
which runs no code): the population and its fitness (from the searcher's ``state_dict``), the
aggregator's sums, the random generator, the queries paid, the history and the unmasked image's
logits. A fingerprint of the config, image and targets guards against continuing another search.
Searchers without ``state_dict`` / ``load_state_dict`` (today: all but ``de``) are not
checkpointed; their images restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from decam.io import atomic_open

VERSION = 1


def fingerprint(config: dict, image: torch.Tensor, target: Any) -> str:
    """What a checkpoint must match to be continued: the resolved config, the model input and the target spec."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(image.detach().float().cpu().contiguous().numpy().tobytes())
    digest.update(repr(target).encode())
    return digest.hexdigest()


def supports_checkpoints(searcher: Any) -> bool:
    return callable(getattr(searcher, "state_dict", None)) and callable(getattr(searcher, "load_state_dict", None))


class Checkpoint:
    """One search's checkpoint file at ``path``, valid for searches with ``key`` (a :func:`fingerprint`)."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.path, self.key = Path(path), key

    def load(self) -> dict | None:
        """The saved state, or None when there is none, it is unreadable or it belongs to another search."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # truncated, corrupt or foreign: start over rather than trust it
            return None
        if not isinstance(state, dict) or state.get("version") != VERSION or state.get("key") != self.key:
            return None
        return state

    def save(self, state: dict) -> None:
        """Replace the file with ``state`` atomically: a killed process leaves the previous one whole.

        Not synced to the disk (a sync cost more than a small search's generation): after a crash
        of the machine the file may be older or unreadable, and then the search continues from
        there or starts over, with the same result."""
        with atomic_open(self.path, sync=False) as f:
            torch.save({**state, "version": VERSION, "key": self.key}, f)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def rng_state(problem: Any) -> torch.Tensor:
    """The random state the search draws from: the problem's own generator, else torch's global one."""
    return problem.generator.get_state() if problem.has_own_generator else torch.get_rng_state()


def set_rng_state(problem: Any, state: torch.Tensor) -> None:
    if problem.has_own_generator:
        problem.generator.set_state(state)
    else:
        torch.set_rng_state(state)
