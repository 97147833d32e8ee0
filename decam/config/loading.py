"""Configuration: YAML in ``configs/`` → typed OmegaConf schema → plain constructor arguments.

Everything is validated here, before any model work: unknown keys, wrong types and values out of
range give a one-line :class:`~decam.errors.ConfigError` naming the key and what is valid.
Plugin sections (``encoding``, ``searcher``, ``aggregator``) are typed from the plugin's own
constructor signature, so a third-party plugin gets the same checks for free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import UnionType
from typing import Any, Optional, Union, get_args, get_origin

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from decam.errors import ConfigError
from decam.registry import AGGREGATORS, ENCODINGS, SEARCHERS, Range, Registry, plugin_params

SECTIONS: dict[str, tuple[Registry, int]] = {
    # section → (registry, leading constructor arguments decam passes itself)
    "encoding": (ENCODINGS, 0),
    "searcher": (SEARCHERS, 1),
    "aggregator": (AGGREGATORS, 0),
}
FILLS = ("black", "mean", "blur")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class RunConfig:
    """Everything one explanation run needs. Plugin sections hold ``name`` plus that plugin's parameters."""

    model: str = "efficientnet_lite0"
    weights: Optional[str] = None  # None: the model's default weights; "random"; or a checkpoint path
    encoding: dict[str, Any] = field(default_factory=lambda: {"name": "ellipses"})
    searcher: dict[str, Any] = field(default_factory=lambda: {"name": "de"})
    aggregator: dict[str, Any] = field(default_factory=lambda: {"name": "paper"})
    generations: int = 50
    budget: Optional[int] = None  # total model queries; when set it decides the number of generations
    alpha: float = 1.0
    objective: str = "logit"  # what the search maximizes: the target's logit or its softmax probability
    fill: str = "black"
    seed: Optional[int] = 0
    batch_size: int = 64
    precision: str = "auto"
    device: str = "cpu"
    fold_batchnorm: bool = True  # search with BatchNorm folded into the convolutions (same outputs, faster)
    compile: bool = False  # torch.compile the search's forward: faster after a one-off compile (many images)
    actors: int = 0  # Ray actors that share each search's fitness evaluation (0: evaluate in this process)
    gpus_per_actor: float = 0.0  # GPUs Ray reserves for each actor (fractions share a GPU)


TOP_LEVEL_CHECKS: dict[str, Range | tuple] = {
    "generations": Range(1, None),
    "budget": Range(1, None),
    "batch_size": Range(1, None),
    "seed": Range(0, 2**32 - 1),
    "fill": FILLS,
    "precision": PRECISIONS,
    "objective": ("logit", "probability"),
    "actors": Range(0, 4096),
    "gpus_per_actor": Range(0, 64),
}


def config_dir() -> Path:
    """The ``configs/`` folder shipped with decam (importable as ``decam.configs``)."""
    return Path(str(files("decam.configs")))


def _load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path}: cannot parse ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return cfg


def _section_defaults(section: str, name: str) -> dict:
    """Defaults for plugin ``name`` from ``configs/<section>/<name>.yaml`` when it exists."""
    path = config_dir() / section / f"{name}.yaml"
    out = OmegaConf.to_container(_load_yaml(path)) if path.is_file() else {}
    return {**out, "name": name}


def parse_overrides(overrides: list[str]) -> list[str]:
    """Check ``key=value`` syntax; ``encoding=NAME`` is shorthand for ``encoding.name=NAME``."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        if key in SECTIONS:
            key = f"{key}.name"
        out.append(f"{key}={value}")
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Schema defaults ← ``configs/default.yaml`` ← ``path`` ← ``key=value`` overrides, then validated.

    Switching a plugin (``searcher=cmaes``) starts that section from the plugin's own YAML, so
    parameters of the previous plugin do not leak into it.
    """
    layers = [_load_yaml(config_dir() / "default.yaml")]
    if path is not None:
        layers.append(_load_yaml(Path(path)))
    dotlist = parse_overrides(overrides or [])
    try:
        layers.append(OmegaConf.from_dotlist(dotlist))
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        culprit = next((item for item in dotlist if not _parses(item)), "overrides")
        raise ConfigError(f"{culprit!r}: cannot parse ({str(e).splitlines()[0]})") from None
    cfg = OmegaConf.structured(RunConfig)
    try:
        for layer in layers:
            for section in SECTIONS:
                new_name = OmegaConf.select(layer, f"{section}.name")
                if new_name is not None and new_name != cfg[section]["name"]:
                    cfg[section] = _section_defaults(section, str(new_name))
            cfg = OmegaConf.merge(cfg, layer)
        OmegaConf.resolve(cfg)  # a broken ${...} interpolation fails here, not in the middle of a run
    except OmegaConfBaseException as e:
        raise ConfigError(_explain_omegaconf(e)) from None
    validate(cfg)
    return cfg


def _parses(item: str) -> bool:
    try:
        OmegaConf.from_dotlist([item])
    except (OmegaConfBaseException, yaml.YAMLError):
        return False
    return True


def _explain_omegaconf(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    msg = str(e).splitlines()[0]
    if "not in struct" in msg or "Key '" in msg and "not" in msg:
        return f"unknown config key {key!r}; valid keys: {', '.join(f.name for f in dataclasses.fields(RunConfig))}"
    return f"config key {key!r}: {msg}"


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid value; fills each plugin section with its defaults."""
    _check_finite("", cfg)
    _check_device(cfg.device)
    for key, check in TOP_LEVEL_CHECKS.items():
        value = cfg[key]
        if value is None:
            continue
        if isinstance(check, Range):
            check.check(key, value)
        elif value not in check:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(check)}")
    for section, (registry, skip) in SECTIONS.items():
        cfg[section] = validate_section(section, registry, dict(cfg[section]), skip)
        _check_finite(f"{section}.", cfg[section])
    _check_budget(cfg.budget, cfg.searcher)
    _check_actors(cfg.actors, cfg.gpus_per_actor, cfg.device)


def _check_actors(actors: int, gpus_per_actor: float, device: str) -> None:
    """evotorch splits each population over ``actors`` ≥ 2 actors and keeps the search on the CPU."""
    if actors == 1:
        raise ConfigError("actors=1: expected 0 (evaluate in this process) or at least 2 "
                          "(evotorch does not use a single actor)")
    if gpus_per_actor > 0 and actors == 0:
        raise ConfigError(f"gpus_per_actor={gpus_per_actor:g} needs actors >= 2")
    if actors and device != "cpu":
        raise ConfigError(f"actors={actors} needs device=cpu (got {device!r}): with actors the search stays on "
                          "the CPU; give each actor a GPU for the model with gpus_per_actor=1")


def _check_budget(budget: int | None, searcher: dict) -> None:
    """A query budget must pay for the first generation: up to 2 × popsize (DE and GA also evaluate the initial population)."""
    popsize = searcher.get("popsize")
    if budget is not None and isinstance(popsize, int) and budget < 2 * popsize:
        raise ConfigError(f"budget={budget} does not cover the first generation of searcher {searcher['name']!r} "
                          f"(up to 2 × popsize = {2 * popsize} queries): raise budget or lower searcher.popsize")


def _check_finite(prefix: str, values) -> None:
    """NaN or infinite numbers are never meaningful settings (use null for "no limit")."""
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}{key}={value}: expected a finite number")


def _check_device(device: str) -> None:
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device={device!r}: expected a torch device such as cpu, cuda or cuda:1") from None


def validate_section(section: str, registry: Registry, values: dict, skip: int) -> dict:
    """Type- and range-check a plugin section against the plugin's constructor signature."""
    name = values.pop("name", None)
    if name is None:
        raise ConfigError(f"{section}.name is missing")
    params = plugin_params(registry[str(name)], skip=skip)
    known = {p.name: p for p in params}
    for key in values:
        if key not in known:
            valid = ", ".join(known) or "none"
            raise ConfigError(f"unknown key {section}.{key} for {section} {name!r}; valid keys: {valid}")
    schema = dataclasses.make_dataclass(f"{section}_{name}", [_schema_field(p) for p in params])
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", "?")
        raise ConfigError(f"{section}.{key}: {str(e).splitlines()[0]}") from None
    out = OmegaConf.to_container(typed)
    for p in params:
        value = out[p.name]
        if p.range is not None and value is not None:
            p.range.check(f"{section}.{p.name}", value)
        if p.choices is not None and value not in p.choices:
            raise ConfigError(f"{section}.{p.name}={value!r}: expected one of {', '.join(map(str, p.choices))}")
    if skip == 0:  # cross-parameter checks live in the constructor (cheap by contract): run them now
        try:
            registry[str(name)](**out)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{section} {name!r}: {' '.join(str(e).split())}") from None
    return {"name": str(name), **out}


def _schema_field(p) -> tuple:
    typ = p.type
    if get_origin(typ) in (Union, UnionType) and type(None) in get_args(typ):  # Optional[X] → X, None allowed below
        typ = next(iter(a for a in get_args(typ) if a is not type(None)))
    typ = typ if typ in (int, float, bool, str) else Any
    return (p.name, Optional[typ] if p.default is None else typ, field(default=p.default))


def plugin_kwargs(section: dict) -> dict:
    """A validated section without its ``name``: the plugin's constructor keyword arguments."""
    return {k: v for k, v in section.items() if k != "name"}
