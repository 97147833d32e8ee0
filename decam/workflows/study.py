"""Studies: a base config swept over a grid (or a random sample) of config keys, over a set of images.

A study file holds ``images:`` (a folder or a list of paths), ``base:`` (config keys to values),
``grid:`` (dotted key → list of values) or ``sample:`` (``n``, ``seed``, ``params``: key → list of
choices or ``{uniform|loguniform|int: [low, high]}``), and optionally ``name``, ``experiment``,
``limit``, ``target`` and ``metrics: {n_steps: N}``. This module parses one and plans its children;
decam.workflows.sweep runs them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from decam.config import config_from_kwargs, load_config
from decam.errors import ConfigError, InputError
from decam.evaluation.metrics import N_STEPS

STUDY_KEYS = ("name", "experiment", "images", "limit", "target", "base", "grid", "sample", "metrics")


@dataclass
class Study:
    """A parsed study: the configurations (``points`` over ``keys``) and images it covers."""

    name: str
    experiment: str
    images: list[Path]
    base: list[str | dict[str, Any]]
    """Config override layers: the study's ``base:`` as a mapping, then command-line ``key=value`` strings."""
    keys: list[str]
    points: list[dict[str, Any]]
    target: int | None = None
    n_steps: int = N_STEPS
    grid: bool = True


@dataclass
class Child:
    """One (configuration, image) pair of a study."""

    point: dict[str, Any]
    config: DictConfig
    image: Path
    key: str

    @property
    def image_id(self) -> str:
        return self.image.name


def _file_key(key: str) -> str:
    """A swept key as part of a file name (``searcher.CR`` → ``searcher_CR``)."""
    return re.sub(r"[^\w\-]+", "_", key)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _images(spec: Any, limit: int | None, where: str) -> list[Path]:
    from decam.io.images import IMAGE_SUFFIXES

    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: images must be a folder or a non-empty list of image files")
    out: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            out += sorted(f for f in item.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            out.append(item)
        else:
            raise InputError(f"{where}: image path {item} does not exist")
    if not out:
        raise InputError(f"{where}: no image files in {', '.join(map(str, items))}")
    return out[:limit] if limit else out


def _sample_points(spec: Any, where: str) -> tuple[list[str], list[dict]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("params"), dict) or not spec["params"]:
        raise ConfigError(f"{where}: sample needs n, params (key → choices or {{uniform: [lo, hi]}}) and optional seed")
    n = spec.get("n", 10)
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"{where}: sample.n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(spec.get("seed", 0))
    draws: dict[str, list] = {}
    for key, dist in spec["params"].items():
        if isinstance(dist, list) and dist:
            dist = {"choice": dist}
        kind, bounds = next(iter(dist.items())) if isinstance(dist, dict) and len(dist) == 1 else (None, None)
        if kind == "choice" and isinstance(bounds, list) and bounds:
            draws[key] = [bounds[i] for i in rng.integers(0, len(bounds), n)]
        elif kind in ("uniform", "loguniform", "int") and isinstance(bounds, list) and len(bounds) == 2:
            lo, hi = bounds
            if kind == "int":
                draws[key] = [int(v) for v in rng.integers(int(lo), int(hi) + 1, n)]
            elif kind == "uniform":
                draws[key] = [round(float(v), 4) for v in rng.uniform(lo, hi, n)]
            else:
                draws[key] = [round(float(v), 4) for v in np.exp(rng.uniform(math.log(lo), math.log(hi), n))]
        else:
            raise ConfigError(f"{where}: sample.params.{key}: expected a list of choices or "
                              "one of {uniform|loguniform|int: [low, high]} or {choice: [...]}")
    keys = list(draws)
    return keys, [{k: draws[k][i] for k in keys} for i in range(n)]


def load_study(
    path: str | Path,
    overrides: list[str] | None = None,
    images: list[str] | None = None,
    limit: int | None = None,
    experiment: str | None = None,
) -> Study:
    """Parse a study file; ``overrides`` ``key=value`` go to ``base``, ``grid.KEY=[v1,v2]`` replace an axis,
    ``metrics.n_steps=N`` sets the insertion/deletion resolution."""
    path = Path(path)
    where = f"study {path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{where}: cannot parse ({str(e).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with images, base and grid or sample")
    unknown = sorted(set(spec) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(STUDY_KEYS)}")
    if "grid" in spec and "sample" in spec:
        raise ConfigError(f"{where}: use grid or sample, not both")
    grid = dict(spec.get("grid") or {})
    metrics = dict(spec.get("metrics") or {})
    base_spec = spec.get("base") or {}
    if not isinstance(base_spec, dict) or not all(isinstance(k, str) for k in base_spec):
        raise ConfigError(f"{where}: base must be a mapping of config keys to values")
    base: list[str | dict[str, Any]] = [config_from_kwargs(**base_spec)]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if key.startswith(("grid.", "metrics.")) and sep:
            section, _, name = key.partition(".")
            (grid if section == "grid" else metrics)[name] = yaml.safe_load(value)
        else:
            base.append(item)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values")
    if "sample" in spec:
        keys, points = _sample_points(spec["sample"], where)
    else:
        keys = list(grid)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]
    n_steps = metrics.pop("n_steps", N_STEPS)
    if metrics:
        raise ConfigError(f"{where}: unknown key metrics.{next(iter(metrics))}; valid keys: metrics.n_steps")
    target = spec.get("target")
    if not isinstance(n_steps, int) or n_steps < 1 or not (target is None or isinstance(target, int)):
        raise ConfigError(f"{where}: metrics.n_steps must be a positive integer and target an integer class index")
    name = str(spec.get("name") or path.stem)
    return Study(
        name=name,
        experiment=experiment or str(spec.get("experiment") or name),
        images=_images(images or spec.get("images"), limit or spec.get("limit"), where),
        base=base,
        keys=keys,
        points=points,
        target=target,
        n_steps=n_steps,
        grid="sample" not in spec,
    )


def plan(study: Study) -> list[Child]:
    """Every (configuration, image) child, configs validated up front (before any model work)."""
    digests = {p: _file_digest(p) for p in study.images}
    children = []
    for point in study.points:
        cfg = load_config(None, [*study.base, config_from_kwargs(**point)])
        resolved = OmegaConf.to_container(cfg)
        for image in study.images:
            key = _digest({"config": resolved, "image": image.name, "sha": digests[image],
                           "target": study.target, "n_steps": study.n_steps})
            children.append(Child(point, cfg, image, key))
    return children


def study_key(study: Study, children: list[Child]) -> str:
    """Identifies a study's parent run: its name, resolved configurations, target and metric steps."""
    configs = [OmegaConf.to_container(c.config) for c in children[:: len(study.images)]]
    return _digest({"name": study.name, "configs": configs, "target": study.target, "n_steps": study.n_steps})


def base_params(layers: list[Any], prefix: str = "") -> dict[str, str]:
    """A study's base layers as dotted key → value text, for its parent run's parameters and study.yaml."""
    out: dict[str, str] = {}
    for layer in layers:
        items = [layer.partition("=")[::2]] if isinstance(layer, str) else layer.items()
        for key, value in items:
            if isinstance(value, dict):
                out.update(base_params([value], f"{prefix}{key}."))
            else:
                out[prefix + key] = "null" if value is None else str(value)
    return out
