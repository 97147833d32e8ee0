"""Validation: one path for top-level keys and plugin sections, then the checks that span keys.

:func:`check_values` checks known keys, types, missing values, finiteness, ranges and choices for any
parameter list, whether it comes from :class:`~decam.config.schema.RunConfig` or from a plugin
constructor. Every failure is one :class:`~decam.errors.ConfigError` line naming the key and what is
valid, raised before any model work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from decam.config.schema import SECTIONS, describe_type, omegaconf_schema, run_params
from decam.errors import ConfigError
from decam.registry import Param, Registry, plugin_params


def check_values(values: Mapping[str, Any], params: Sequence[Param], prefix: str = "",
                 owner: str | None = None) -> dict[str, Any]:
    """``values`` checked against ``params`` → plain typed values, absent keys taking each parameter's default.

    ``prefix`` (``"searcher."``) goes before every key in messages; ``owner`` (``"searcher 'de'"``)
    names the plugin a section belongs to, ``None`` for top-level keys.
    """
    known = {p.name: p for p in params}
    for key in values:
        if key not in known:
            valid = ", ".join(known) or "none"
            if owner is None:
                raise ConfigError(f"unknown config key {key!r}; valid keys: {valid}")
            raise ConfigError(f"unknown key {prefix}{key} for {owner}; valid keys: {valid}")
    schema = omegaconf_schema(prefix.rstrip(".") or "run", list(params))
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
    except OmegaConfBaseException as e:
        raise ConfigError(_type_error(e, values, known, prefix)) from None
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        hint = " (configs/default.yaml must set every RunConfig key)" if owner is None else ""
        raise ConfigError(f"config key {prefix + missing[0]!r} has no value{hint}")
    out = OmegaConf.to_container(typed)
    for p in params:
        key, value = f"{prefix}{p.name}", out[p.name]
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):  # never a meaningful setting (null: no limit)
            raise ConfigError(f"{key}={value}: expected a finite number")
        if p.range is not None:
            p.range.check(key, value)
        if p.choices is not None and value not in p.choices:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, p.choices))}")
    return out


def _type_error(e: OmegaConfBaseException, values: Mapping[str, Any], known: dict[str, Param], prefix: str) -> str:
    name = str(getattr(e, "full_key", None) or "").split(".")[0].split("[")[0]
    if name not in known:
        return f"{prefix}{name or '?'}: {str(e).splitlines()[0]}"
    return f"{prefix}{name}={_plain(values.get(name))!r}: expected {describe_type(known[name])}"


def _plain(value: Any) -> Any:
    try:
        return OmegaConf.to_container(value)
    except ValueError:  # not an OmegaConf container
        return value


def validate(cfg: DictConfig) -> DictConfig:
    """The merged, resolved config checked and typed: top-level keys, then each plugin section, then the
    rules that span keys. Plugin sections come back filled with the plugin's constructor defaults."""
    values = check_values(cfg, run_params())
    _check_device(values["device"])
    for section, (registry, skip) in SECTIONS.items():
        values[section] = validate_section(section, registry, dict(values[section]), skip)
    _check_budget(values["budget"], values["searcher"])
    _check_actors(values["actors"], values["gpus_per_actor"], values["device"])
    return OmegaConf.merge(OmegaConf.structured(omegaconf_schema("RunConfig", run_params())), values)


def validate_section(section: str, registry: Registry, values: dict, skip: int) -> dict:
    """Check a plugin section against the plugin's constructor signature; absent keys take its defaults."""
    values = dict(values)
    name = values.pop("name", None)
    if name is None:
        raise ConfigError(f"{section}.name is missing")
    factory = registry[str(name)]
    out = check_values(values, plugin_params(factory, skip=skip), f"{section}.", f"{section} {str(name)!r}")
    if skip == 0:  # cross-parameter checks live in the constructor (cheap by contract): run them now
        try:
            factory(**out)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{section} {str(name)!r}: {' '.join(str(e).split())}") from None
    return {"name": str(name), **out}


def plugin_kwargs(section: Mapping[str, Any]) -> dict[str, Any]:
    """A validated section without its ``name``: the plugin's constructor keyword arguments."""
    return {k: v for k, v in section.items() if k != "name"}


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


def _check_budget(budget: int | None, searcher: Mapping[str, Any]) -> None:
    """A query budget must pay for the first generation: up to 2 × popsize (DE and GA also evaluate the initial population)."""
    popsize = searcher.get("popsize")
    if budget is not None and isinstance(popsize, int) and budget < 2 * popsize:
        raise ConfigError(f"budget={budget} does not cover the first generation of searcher {searcher['name']!r} "
                          f"(up to 2 × popsize = {2 * popsize} queries): raise budget or lower searcher.popsize")


def _check_device(device: str) -> None:
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device={device!r}: expected a torch device such as cpu, cuda or cuda:1") from None
