"""Loading: ``configs/default.yaml`` ← a config file ← overrides, merged, resolved, then validated.

Overrides come as ``key=value`` strings (the command line) and/or mappings (Python, built with
:func:`config_from_kwargs`). Defaults live in one place each: ``configs/default.yaml`` for the run,
the plugin constructor's signature for a plugin section.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, Union

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from decam.config.checks import validate
from decam.config.schema import SECTIONS
from decam.errors import ConfigError

Override = Union[str, Mapping[str, Any]]


def config_dir() -> Path:
    """The ``configs/`` folder shipped with decam (importable as ``decam.configs``)."""
    return Path(str(files("decam.configs")))


def parse_overrides(overrides: Sequence[str]) -> list[str]:
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


def config_from_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Python keyword arguments → one nested override mapping for :func:`load_config`.

    ``alpha=2`` sets a key; ``searcher={"CR": 0.5}`` and ``**{"searcher.CR": 0.5}`` set a plugin
    parameter; a string for a plugin section (``encoding="rectangles"``) names the plugin. Later
    keys win; two mappings for the same key are merged. Nothing is validated here.
    """
    return _nest(kwargs, top=True)


def _nest(mapping: Mapping[Any, Any], top: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key or "" in key.split("."):
            raise ConfigError(f"config key {key!r}: expected a name or a dotted path such as searcher.CR")
        path = key.split(".")
        if top and len(path) == 1 and key in SECTIONS and not isinstance(value, Mapping):
            value = {"name": value}
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        value = _nest(value) if isinstance(value, Mapping) else _config_value(value)
        if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
            value = _deep_merge(node[path[-1]], value)
        node[path[-1]] = value
    return out


def _deep_merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if both else value
    return out


def _config_value(value: Any) -> Any:
    """Values OmegaConf cannot hold but that mean a config value: paths and numpy scalars."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_config_value(v) for v in value]
    return value


def load_config(path: str | Path | None = None,
                overrides: Sequence[Override] | Mapping[str, Any] | None = None) -> DictConfig:
    """``configs/default.yaml`` ← ``path`` ← ``overrides``, resolved and validated.

    ``overrides`` is one layer, applied in order (later wins): ``key=value`` strings and/or mappings
    (nested, or with dotted keys; see :func:`config_from_kwargs`). Switching a plugin
    (``searcher=cmaes``) starts that section from the new plugin's constructor defaults, so the
    previous plugin's parameters do not leak; the section keys the same layer sets are kept.
    """
    layers = [_load_yaml(config_dir() / "default.yaml")]
    if path is not None:
        layers.append(_load_yaml(Path(path)))
    one = isinstance(overrides, (str, Mapping))
    layers.append(_override_layer([overrides] if one else list(overrides or [])))
    cfg = OmegaConf.create({})
    try:
        for layer in layers:
            for section in SECTIONS:
                new_name = OmegaConf.select(layer, f"{section}.name")
                if new_name is not None and new_name != OmegaConf.select(cfg, f"{section}.name"):
                    cfg[section] = {"name": new_name}  # validation fills in the new plugin's defaults
            cfg = OmegaConf.merge(cfg, layer)
        OmegaConf.resolve(cfg)  # a broken ${...} interpolation fails here, not in the middle of a run
    except OmegaConfBaseException as e:
        raise ConfigError(_explain_omegaconf(e)) from None
    return validate(cfg)


def _load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path}: cannot parse ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return _sections_as_mappings(cfg)


def _sections_as_mappings(cfg: DictConfig) -> DictConfig:
    """``searcher: cmaes`` in a file means ``searcher: {name: cmaes}``, as on the command line."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    for section in SECTIONS:
        if section in raw and not isinstance(raw[section], dict):
            cfg[section] = {"name": raw[section]}
    return cfg


def _override_layer(overrides: list[Override]) -> DictConfig:
    """Strings and mappings, in order, merged into the one override layer."""
    parts: list[DictConfig] = []
    strings: list[str] = []
    try:
        for item in overrides:
            if isinstance(item, str):
                strings.append(item)
                continue
            if not isinstance(item, Mapping):
                raise ConfigError(f"override {item!r}: expected a key=value string or a mapping of keys to values")
            if strings:
                parts.append(_dotlist(strings))
                strings = []
            parts.append(OmegaConf.create(_nest(item, top=True)))
        if strings:
            parts.append(_dotlist(strings))
        return OmegaConf.merge(OmegaConf.create({}), *parts)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain_omegaconf(e)) from None


def _dotlist(strings: list[str]) -> DictConfig:
    dotlist = parse_overrides(strings)
    try:
        return OmegaConf.from_dotlist(dotlist)
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        culprit = next((item for item in dotlist if not _parses(item)), "overrides")
        raise ConfigError(f"{culprit!r}: cannot parse ({str(e).splitlines()[0]})") from None


def _parses(item: str) -> bool:
    try:
        OmegaConf.from_dotlist([item])
    except (OmegaConfBaseException, yaml.YAMLError):
        return False
    return True


def _explain_omegaconf(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    return f"config key {key!r}: {str(e).splitlines()[0]}"
