"""Several searches, one model batch: searches run in threads and meet at a shared forward.

Each search (one image) calls :class:`SharedForward` with its chunk of masked images and blocks;
when every live search has submitted, the last one to arrive runs the model once on all chunks
(in a fixed order, so results do not depend on thread timing) and hands each its rows. Small
populations thus fill the model's batches, which is what a GPU (and, less so, a CPU) needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from decam.errors import ModelOutputError


class SharedForward:
    """A thread-safe ``forward`` that gathers one chunk from every live worker per model call."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.forward = forward  # e.g. a FastForward: it enters autocast itself, in whichever thread runs it
        self._cond = threading.Condition()
        self._live: set[int] = set()
        self._pending: dict[int, torch.Tensor] = {}
        self._results: dict[int, torch.Tensor | BaseException] = {}
        self.calls = 0

    def join(self, worker: int) -> None:
        with self._cond:
            self._live.add(worker)

    def leave(self, worker: int) -> None:
        """A finished (or failed) worker stops counting; waiting ones may now form a batch."""
        with self._cond:
            self._live.discard(worker)
            self._pending.pop(worker, None)
            self._maybe_run()

    def bind(self, worker: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The ``forward`` callable for one worker."""
        return lambda x: self._submit(worker, x)

    def _submit(self, worker: int, x: torch.Tensor) -> torch.Tensor:
        with self._cond:
            self._pending[worker] = x
            self._maybe_run()
            while worker not in self._results:
                self._cond.wait()
            out = self._results.pop(worker)
        if isinstance(out, BaseException):
            raise out
        return out

    def _maybe_run(self) -> None:
        """Run the model when every live worker has a chunk waiting (called with the lock held)."""
        if not self._pending or not self._live.issubset(self._pending):
            return
        workers = sorted(self._pending)
        chunks = [self._pending.pop(w) for w in workers]
        try:
            logits = self.forward(torch.cat(chunks) if len(chunks) > 1 else chunks[0])
            self.calls += 1
            if len(chunks) == 1:  # nothing to split: the caller checks the output itself
                self._results[workers[0]] = logits
            else:
                total = sum(c.shape[0] for c in chunks)
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != total:
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise ModelOutputError(f"model returned {shape} for a batch of {total} images; expected logits (B, C)")
                for w, part in zip(workers, logits.split([c.shape[0] for c in chunks])):
                    self._results[w] = part
        except BaseException as e:  # every waiting worker gets the model's failure
            for w in workers:
                self._results[w] = e
        self._cond.notify_all()
