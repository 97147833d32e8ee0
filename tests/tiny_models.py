"""Tiny black-box models for CLI tests, loadable as ``--model tiny_models:<factory>`` with this
folder on PYTHONPATH. Each factory returns a :class:`decam.models.LoadedModel` or a callable."""

from __future__ import annotations

import os
import signal
import time

import torch

from decam.models import LoadedModel

CLASSES = 10
SIZE = (48, 48)


class Tiny:
    """Fixed random linear read-out of a 6x6 average-pooled image: deterministic and fast."""

    def __init__(self, delay: float = 0.0) -> None:
        g = torch.Generator().manual_seed(1234)
        self.weight = torch.randn(CLASSES, 3 * 6 * 6, generator=g)
        self.delay = delay

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.delay:
            time.sleep(self.delay)
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.float(), 6).flatten(1)
        return 10 * pooled @ self.weight.T


def _loaded(forward, name: str) -> LoadedModel:
    return LoadedModel(forward, SIZE, None, [f"class{i}" for i in range(CLASSES)], name)


def tiny() -> LoadedModel:
    return _loaded(Tiny(), "tiny")


def slow() -> LoadedModel:
    """``tiny`` that sleeps ``TINY_DELAY`` seconds (default 0.05) per forward call."""
    return _loaded(Tiny(float(os.environ.get("TINY_DELAY", "0.05"))), "slow")


class Meter:
    """What ``counted`` has scored since :meth:`reset`, and when it stops the run."""

    images = 0
    sigterm_after: int | None = None

    def reset(self, sigterm_after: int | None = None) -> None:
        self.images, self.sigterm_after = 0, sigterm_after


METER = Meter()


def counted() -> LoadedModel:
    """``tiny`` that counts the images it scores in ``METER`` and, once that passes
    ``METER.sigterm_after``, sends this process SIGTERM (a scheduler stopping the run mid-search).
    The model is cached by name, so the meter (not the model) is reset between runs."""
    model = Tiny()

    def forward(x: torch.Tensor) -> torch.Tensor:
        METER.images += x.shape[0]
        if METER.sigterm_after is not None and METER.images > METER.sigterm_after:
            METER.sigterm_after = None
            os.kill(os.getpid(), signal.SIGTERM)
        return model(x)

    return _loaded(forward, "counted")


def nan() -> LoadedModel:
    return _loaded(lambda x: torch.full((x.shape[0], CLASSES), float("nan")), "nan")


def inf() -> LoadedModel:
    return _loaded(lambda x: torch.full((x.shape[0], CLASSES), float("inf")), "inf")


def nan_when_masked() -> LoadedModel:
    """Finite on the unmasked image (a batch of one), NaN on every batch of masked images."""
    model = Tiny()
    return _loaded(lambda x: model(x) if x.shape[0] == 1 else torch.full((x.shape[0], CLASSES), float("nan")), "nanm")


def flat() -> LoadedModel:
    """Returns ``(B,)`` instead of ``(B, C)``."""
    return _loaded(lambda x: Tiny()(x)[:, 0], "flat")


def one_row() -> LoadedModel:
    """Always returns one row of logits, whatever the batch size."""
    model = Tiny()
    return _loaded(lambda x: model(x[:1]), "one_row")


def not_a_tensor() -> LoadedModel:
    return _loaded(lambda x: [[0.0] * CLASSES] * x.shape[0], "list")


def raises() -> LoadedModel:
    def forward(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied\n(1x3 and 4x5)")

    return _loaded(forward, "raises")


def raises_when_masked() -> LoadedModel:
    model = Tiny()

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 1:
            raise MemoryError("out of memory")
        return model(x)

    return _loaded(forward, "raises_when_masked")


def broken_factory() -> LoadedModel:
    raise RuntimeError("checkpoint is corrupt")


def not_callable() -> int:
    return 42


def plain_callable():
    """A bare callable (no LoadedModel): decam feeds it images at the default input size."""
    return Tiny()


def oracle() -> LoadedModel:
    """decam.testing.BoxOracle by name, for Ray actors that load the model themselves: class 0's
    logit is the kept fraction of a 16x16 box at rows 8–24, columns 30–46 of a 48x48 image."""
    from decam.testing import BoxOracle

    return LoadedModel(BoxOracle((8, 30, 24, 46)), SIZE, None, ["evidence", "constant"], "oracle")
