"""decam: black-box saliency maps for image classifiers, found by evolutionary search (DE-CAM).

The public facade. Names load on first use, so ``import decam`` (and ``decam --help``) stays fast;
``decam.explain``, ``decam.Explainer`` and the ``register_*`` / ``list_*`` / ``create_*`` helpers
are the API plugin authors and users call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from decam.errors import (ConfigError, DecamError, InputError, ModelOutputError, ModelUnavailableError, OutputError,
                          SearchSpaceError)
from decam.registry import AGGREGATORS, ENCODINGS, SEARCHERS, Range, Registry

if TYPE_CHECKING:
    from decam.search.explainer import Explainer, Explanation, explain

__version__ = "0.1.0"
_EXPLAINER = ("Explainer", "Explanation", "explain")


def __getattr__(name: str) -> Any:
    """``decam.Explainer``, ``decam.Explanation`` and ``decam.explain`` import torch on first use, so
    that ``import decam`` (and ``decam --help``) stays light."""
    if name in _EXPLAINER:
        from decam.search import explainer

        return getattr(explainer, name)
    raise AttributeError(f"module 'decam' has no attribute {name!r}")

def register_encoding(name: str) -> Callable:
    """Decorator registering an :class:`~decam.encodings.base.Encoding` subclass under ``name``."""
    return ENCODINGS.register(name)


def register_searcher(name: str) -> Callable:
    """Decorator registering a searcher factory ``(problem, **params) -> evotorch SearchAlgorithm``."""
    return SEARCHERS.register(name)


def register_aggregator(name: str) -> Callable:
    """Decorator registering an :class:`~decam.search.aggregators.Aggregator` subclass under ``name``."""
    return AGGREGATORS.register(name)


def list_encodings() -> list[str]:
    return list(ENCODINGS)


def list_searchers() -> list[str]:
    return list(SEARCHERS)


def list_aggregators() -> list[str]:
    return list(AGGREGATORS)


def create_encoding(name: str, **cfg: Any):
    """An encoding instance; unknown names raise ``ConfigError`` naming the closest ones."""
    return ENCODINGS[name](**cfg)


def create_searcher(name: str, problem, **cfg: Any):
    """An evotorch ``SearchAlgorithm`` on ``problem``."""
    return SEARCHERS[name](problem, **cfg)


def create_aggregator(name: str, **cfg: Any):
    return AGGREGATORS[name](**cfg)


__all__ = [
    "Explainer", "Explanation", "explain", "Range", "Registry",
    "register_encoding", "register_searcher", "register_aggregator",
    "list_encodings", "list_searchers", "list_aggregators",
    "create_encoding", "create_searcher", "create_aggregator",
    "DecamError", "ConfigError", "InputError", "ModelOutputError", "ModelUnavailableError", "OutputError",
    "SearchSpaceError",
]
