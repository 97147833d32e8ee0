"""Studies: a base config swept over a grid (or a random sample) of config keys, over a set of images.

A study file holds ``images:`` (a folder or a list of paths), ``base:`` (config keys to values),
``grid:`` (dotted key → list of values) or ``sample:`` (``n``, ``seed``, ``params``: key → list of
choices or ``{uniform|loguniform|int: [low, high]}``), and optionally ``name``, ``experiment``,
``limit``, ``target`` and ``metrics: {n_steps: N}``.

In MLflow a study is one parent run with one child run per (configuration, image). Children carry
a ``decam.key`` tag hashing their resolved config and image contents; rerunning a study reuses its
parent and skips finished children, so an interrupted sweep loses at most the run in flight.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from decam.config import config_from_kwargs, load_config
from decam.errors import ConfigError, DecamError, InputError
from decam.io import atomic_open, safe_stem
from decam.evaluation.metrics import N_STEPS
from decam.tracking import Tracker, log_explanation, score_explanation

STUDY_KEYS = ("name", "experiment", "images", "limit", "target", "base", "grid", "sample", "metrics")
SCORES = ("insertion", "deletion", "diffauc", "queries", "seconds")
KEY_TAG, STUDY_TAG, STUDY_KEY_TAG = "decam.key", "decam.study", "decam.study_key"


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


@dataclass
class StudyResult:
    parent: str
    rows: list[dict]
    """One per finished child: swept values, ``image``, the SCORES and ``run_id``."""
    summary: list[dict]
    """One per configuration: swept values, ``images`` and mean/std of the scores."""
    ran: int = 0
    skipped: int = 0
    failures: list[tuple[str, DecamError]] = field(default_factory=list)


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


def _parent(tracker: Tracker, study: Study, key: str) -> str:
    found = tracker.search(f"tags.`{STUDY_KEY_TAG}` = '{key}'")
    if found:
        run_id = found[0].info.run_id
        tracker.reopen(run_id)
        return run_id
    run_id = tracker.start_run(study.name, {STUDY_TAG: study.name, STUDY_KEY_TAG: key})
    params = {"study.keys": ",".join(study.keys) or "-", "study.configurations": len(study.points),
              "study.n_steps": study.n_steps, "study.target": study.target if study.target is not None else "top-1"}
    params.update({f"base.{k}": v for k, v in _base_params(study.base).items()})
    if study.grid:
        params.update({f"grid.{k}": str(sorted({p[k] for p in study.points}, key=str)) for k in study.keys})
    tracker.log_params(run_id, params)
    return run_id


def _base_params(layers: list[Any], prefix: str = "") -> dict[str, str]:
    """A study's base layers as dotted key → value text, for its parent run's parameters and study.yaml."""
    out: dict[str, str] = {}
    for layer in layers:
        items = [layer.partition("=")[::2]] if isinstance(layer, str) else layer.items()
        for key, value in items:
            if isinstance(value, dict):
                out.update(_base_params([value], f"{prefix}{key}."))
            else:
                out[prefix + key] = "null" if value is None else str(value)
    return out


def run_study(
    study: Study,
    tracker: Tracker,
    out_dir: str | Path | None = None,
    progress: Callable[[str, Child, dict], None] | None = None,
) -> StudyResult:
    """Run (or resume) ``study``: one child run per unfinished (configuration, image), then the summary.

    ``progress(event, child, info)`` is called per child with event ``skip``, ``done`` or ``fail``.
    The parent ends FINISHED, KILLED (Ctrl-C) or FAILED; it is never left RUNNING on the way out.
    """
    from decam.search.explainer import Explainer

    children = plan(study)
    parent = _parent(tracker, study, study_key(study, children))
    result = StudyResult(parent, [], [])
    try:
        done = {}
        for run in tracker.children(parent):
            key = run.data.tags.get(KEY_TAG)
            if run.info.status == "FINISHED" and key not in done:
                done[key] = run
            else:  # interrupted or duplicate: it will be redone
                tracker.delete_run(run.info.run_id)
        explainers: dict[str, Explainer] = {}
        for child in children:
            if child.key in done:
                result.skipped += 1
                if progress:
                    progress("skip", child, {})
                continue
            ck = _digest(OmegaConf.to_container(child.config))
            explainer = explainers.get(ck) or explainers.setdefault(ck, Explainer(config=child.config))
            try:
                exp = explainer.explain(child.image, study.target)
            except DecamError as e:
                result.failures.append((str(child.image), e))
                if progress:
                    progress("fail", child, {"error": str(e)})
                continue
            scores = score_explanation(explainer, exp, study.n_steps)
            folder = Path(out_dir) / f"{safe_stem(child.image_id)}-{child.key[:8]}" if out_dir else None
            label = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in child.point.items())
            log_explanation(tracker, exp, child.image_id, scores, parent=parent, folder=folder,
                            run_name=f"{Path(child.image_id).stem} {label}".strip(),
                            tags={KEY_TAG: child.key, STUDY_TAG: study.name})
            result.ran += 1
            if progress:
                progress("done", child, {"diffauc": scores.diff})
        result.rows = collect_rows(tracker, parent, children)
        result.summary = summarize(result.rows, study.keys)
        log_summary(tracker, parent, study, result, out_dir)
    except KeyboardInterrupt:
        _close(tracker, parent, "KILLED")
        raise
    except BaseException:
        _close(tracker, parent, "FAILED")
        raise
    tracker.end_run(parent, "FINISHED")
    return result


def _close(tracker: Tracker, run_id: str, status: str) -> None:
    try:
        tracker.end_run(run_id, status)
    except DecamError:
        pass  # the store itself failed: the original error is the one to report


def collect_rows(tracker: Tracker, parent: str, children: list[Child]) -> list[dict]:
    """The finished children of ``parent`` that belong to this plan, read back from the store."""
    by_key = {c.key: c for c in children}
    rows = []
    for run in tracker.children(parent):
        child = by_key.get(run.data.tags.get(KEY_TAG))
        if child is None or run.info.status != "FINISHED":
            continue
        m = run.data.metrics
        rows.append({**child.point, "image": child.image_id, **{k: m.get(k, math.nan) for k in SCORES},
                     "run_id": run.info.run_id, "_order": children.index(child)})
    rows.sort(key=lambda r: r.pop("_order"))
    return rows


def summarize(rows: list[dict], keys: list[str]) -> list[dict]:
    """Per configuration (in plan order): number of images and mean (and DiffAUC std) of the scores."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(json.dumps([row[k] for k in keys], default=str), []).append(row)
    out = []
    for members in groups.values():
        entry = {k: members[0][k] for k in keys}
        entry["images"] = len(members)
        for score in SCORES:
            entry[score] = float(np.mean([r[score] for r in members]))
        entry["diffauc_std"] = float(np.std([r["diffauc"] for r in members]))
        out.append(entry)
    return out


def summary_markdown(summary: list[dict], keys: list[str]) -> str:
    """The summary as a Markdown table; AUCs ×100 like the paper, best DiffAUC in bold."""
    head = [*keys, "images", "insertion", "deletion", "DiffAUC", "queries", "seconds"]
    best = max((s["diffauc"] for s in summary), default=None)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        diff = f"{100 * s['diffauc']:.1f} ± {100 * s['diffauc_std']:.1f}"
        cells = [*(str(s[k]) for k in keys), str(s["images"]), f"{100 * s['insertion']:.1f}",
                 f"{100 * s['deletion']:.1f}", f"**{diff}**" if s["diffauc"] == best else diff,
                 f"{s['queries']:.0f}", f"{s['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(folder: Path, study: Study, result: StudyResult) -> None:
    """summary.csv (AUCs in [0, 1]), summary.md, runs.csv, DiffAUC per swept key and grid heat maps."""
    from decam.tracking.charts import heatmap, value_plot

    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("summary.csv", result.summary), ("runs.csv", result.rows)):
        with atomic_open(folder / name, "w") as f:
            if table:
                writer = csv.DictWriter(f, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    with atomic_open(folder / "summary.md", "w") as f:
        f.write(f"## {study.name}\n\n{len(study.images)} images; AUCs × 100 (mean over images, DiffAUC ± std)\n\n")
        f.write(summary_markdown(result.summary, study.keys))
    if not result.rows:
        return
    diff = [r["diffauc"] for r in result.rows]
    for key in study.keys:
        value_plot(folder / f"diffauc_vs_{_file_key(key)}.png", key, [r[key] for r in result.rows], diff)
    if study.grid:
        for a, b in itertools.combinations(study.keys, 2):
            heatmap(folder / f"heatmap_{_file_key(a)}_{_file_key(b)}.png", (a, b), result.rows)


def log_summary(tracker: Tracker, parent: str, study: Study, result: StudyResult, out_dir: str | Path | None) -> None:
    """Write the summary files (under ``out_dir/summary`` when given) and log them to the parent run."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="decam-study-") as tmp:
        folder = Path(out_dir) / "summary" if out_dir else Path(tmp)
        write_summary(folder, study, result)
        with atomic_open(folder / "study.yaml", "w") as f:
            base = [f"{k}={v}" for k, v in _base_params(study.base).items()]
            yaml.safe_dump({"name": study.name, "images": [p.name for p in study.images], "base": base,
                            "keys": study.keys, "points": study.points, "target": study.target,
                            "n_steps": study.n_steps}, f, sort_keys=False)
        tracker.log_artifacts(parent, folder, "summary")
    best = max((s["diffauc"] for s in result.summary), default=None)
    tracker.log_metrics(parent, [("best_diffauc", best, 0)] if best is not None else [])
    tracker.log_tags(parent, {"decam.children": len(result.rows), "decam.io.images": len(study.images)})


__all__ = ["Study", "Child", "StudyResult", "load_study", "plan", "run_study", "summarize", "summary_markdown"]
