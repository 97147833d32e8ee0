"""The typed schema of a run: :class:`RunConfig` declares types, ranges and choices; ``configs/default.yaml``
holds the values.

Top-level keys and plugin sections are described the same way, as a list of
:class:`~decam.registry.Param` read by :func:`~decam.registry.plugin_params` (from RunConfig's type hints
or from a plugin constructor's signature), and turned into an OmegaConf schema by :func:`omegaconf_schema`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Dict, Literal, Optional, Union, get_args, get_origin

from omegaconf import MISSING

from decam.registry import AGGREGATORS, ENCODINGS, SEARCHERS, Param, Range, Registry, plugin_params

SECTIONS: dict[str, tuple[Registry, int]] = {
    # section → (registry, leading constructor arguments decam passes itself)
    "encoding": (ENCODINGS, 0),
    "searcher": (SEARCHERS, 1),
    "aggregator": (AGGREGATORS, 0),
}


@dataclass
class RunConfig:
    """Everything one explanation run needs: types, ranges and choices only.

    Every field is ``MISSING`` on purpose: the one place that gives run settings a value is
    ``configs/default.yaml``. Plugin sections hold ``name`` plus that plugin's parameters, whose
    defaults are the plugin constructor's own.
    """

    model: str = MISSING
    weights: Optional[str] = MISSING  # null: the model's default weights; "random"; or a checkpoint path
    model_options: dict[str, Any] = MISSING  # keyword arguments of the model's adapter (onnx:, http(s)://; docs/remote-models.md)
    encoding: dict[str, Any] = MISSING
    searcher: dict[str, Any] = MISSING
    aggregator: dict[str, Any] = MISSING
    generations: Annotated[int, Range(1, None)] = MISSING
    budget: Annotated[Optional[int], Range(1, None)] = MISSING  # total model queries; decides the generations
    converge: Annotated[Optional[float], Range(0, 1, low_open=True)] = MISSING  # stop once the map settles
    min_generations: Annotated[int, Range(1, None)] = MISSING  # never stop for convergence before this
    reward: Literal["first", "mean"] = MISSING  # with several targets: what the fitness rewards
    alpha: float = MISSING
    objective: Literal["logit", "probability"] = MISSING  # what the search maximizes for the target class
    fill: Literal["black", "mean", "blur", "mix"] = MISSING
    seed: Annotated[Optional[int], Range(0, 2**32 - 1)] = MISSING
    batch_size: Annotated[int, Range(1, None)] = MISSING
    precision: Literal["auto", "fp32", "bf16"] = MISSING
    device: str = MISSING
    fold_batchnorm: bool = MISSING  # search with BatchNorm folded into the convolutions (same outputs, faster)
    compile: bool = MISSING  # torch.compile the search's forward: faster after a one-off compile (many images)
    actors: Annotated[int, Range(0, 4096)] = MISSING  # Ray actors sharing each search's fitness evaluation
    gpus_per_actor: Annotated[float, Range(0, 64)] = MISSING  # GPUs Ray reserves per actor (fractions share one)


def run_params() -> list[Param]:
    """RunConfig's fields as parameters (default ``MISSING``), sections included."""
    return plugin_params(RunConfig)


def omegaconf_schema(name: str, params: list[Param]) -> type:
    """A dataclass OmegaConf can type-check against: each parameter's type reduced to what OmegaConf holds."""
    return dataclasses.make_dataclass(name, [_schema_field(p) for p in params])


def _schema_field(p: Param) -> tuple:
    typ, optional = p.type, p.default is None
    if get_origin(typ) in (Union, UnionType) and type(None) in get_args(typ):  # Optional[X] → X, None allowed
        optional = True
        typ = next(a for a in get_args(typ) if a is not type(None))
    if typ is dict or get_origin(typ) is dict:
        typ = Dict[str, Any]
    elif typ not in (int, float, bool, str):
        typ = Any  # a type OmegaConf cannot hold (a class, a tensor): the constructor call checks it
    return (p.name, Optional[typ] if optional else typ, field(default=p.default))


def describe_type(p: Param) -> str:
    """What a value of parameter ``p`` must be, for error messages."""
    typ = p.type
    optional = p.default is None or (get_origin(typ) in (Union, UnionType) and type(None) in get_args(typ))
    if get_origin(typ) in (Union, UnionType):
        typ = next((a for a in get_args(typ) if a is not type(None)), Any)
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    kind = "a mapping" if typ is dict or get_origin(typ) is dict else kinds.get(typ, f"a {getattr(typ, '__name__', typ)}")
    return f"{kind} or null" if optional else kind
