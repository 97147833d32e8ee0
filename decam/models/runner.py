"""Counted, checked queries: every image a method sends to the black box goes through a :class:`ModelRunner`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from decam.errors import ModelOutputError


def check_logits(out: object, n: int, where: str = "") -> torch.Tensor:
    """``out`` as float32 logits ``(n, C)``; a ModelOutputError for anything else or non-finite values
    (``where``, e.g. "on the unmasked image", ends the message)."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        batch = "one image; expected logits (1, C)" if n == 1 else f"a batch of {n} images; expected logits (B, C)"
        raise ModelOutputError(f"model returned {shape} for {batch}")
    if not torch.isfinite(out).all():
        raise ModelOutputError(" ".join(("model returned NaN or infinite logits", where)).strip())
    return out.float()


class ModelRunner:
    """Sends images to ``forward`` in chunks of ``batch_size`` and returns float32 logits ``(B, C)``.

    Any failure of the black box becomes a one-line :class:`~decam.errors.ModelOutputError`;
    ``queries`` counts every image sent (the cost of a remote model).
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 64, where: str = "") -> None:
        self.forward, self.batch_size, self.where = forward, int(batch_size), where
        self.queries = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self._one(chunk) for chunk in x.split(self.batch_size)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        try:
            with torch.inference_mode():
                out = self.forward(x)
        except ModelOutputError:
            raise
        except Exception as e:  # the model is a black box: any failure is the model's
            raise ModelOutputError(f"model raised {type(e).__name__}: {' '.join(str(e).split())}") from e
        self.queries += x.shape[0]
        return check_logits(out, x.shape[0], self.where)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of the logits ``(B, C)``."""
        return self(x).softmax(dim=-1)
