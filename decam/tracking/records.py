"""What decam logs as MLflow runs: explanations (config, fitness curve, scores, pictures) and
evaluations (a parent run with a child per image × method)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decam.tracking.store import Tracker

SERIES = ("best", "mean", "median", "best_area", "queries")
"""``Explanation.history`` keys logged per generation (``step`` = generation)."""


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested config → ``{"searcher.CR": 0.2, ...}`` with dotted keys."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def run_params(config: Mapping, image_id: str) -> dict[str, str]:
    """MLflow params of one run: the flattened resolved config plus the image id."""
    params = {k: "null" if v is None else str(v) for k, v in flatten(config).items()}
    params["image"] = image_id
    return params


def history_rows(history: list[dict], queries: int | None = None) -> list[tuple[str, float, int]]:
    """Per-generation metrics from ``Explanation.history``; ``queries`` (the run's total) shifts the
    cumulative query count so that it includes the unmasked forward pass and ends at the total."""
    shift = queries - history[-1]["queries"] if history and queries is not None else 0
    rows = []
    for entry in history:
        step = int(entry["generation"])
        rows += [(k, float(entry[k]) + (shift if k == "queries" else 0), step) for k in SERIES if k in entry]
    return rows


def log_record(
    tracker: Tracker,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    series: list[tuple[str, float, int]] | None = None,
    folder: str | Path | None = None,
    tags: Mapping[str, str] | None = None,
    parent: str | None = None,
) -> str:
    """One complete run: params, step series, final metrics and the files in ``folder``; returns its id.

    The generic entry point for anything decam measures (an explanation, a baseline, an evaluation
    row). A failure marks the run FAILED (when the store still answers) and raises TrackingError.
    """
    with tracker.run(name, tags, parent) as run_id:
        if params:
            tracker.log_params(run_id, params)
        rows = list(series or [])
        last_step = max((s for _, _, s in rows), default=0)
        seen = set(rows)  # a final value equal to the series' last point is already logged
        finals = [(k, float(v), last_step) for k, v in (metrics or {}).items()]
        tracker.log_metrics(run_id, rows + [r for r in finals if r not in seen])
        if folder is not None:
            tracker.log_artifacts(run_id, folder)
    return run_id


def explanation_metrics(exp, scores=None) -> dict[str, float]:
    """Final metrics of one explanation: insertion, deletion, diffauc (when scored), queries, seconds, and
    for a model behind a connection ``remote_images``, ``remote_requests``, ``remote_retries``."""
    out = {"queries": float(exp.queries), "seconds": float(exp.seconds)}
    out.update({f"remote_{k}": float(v) for k, v in (getattr(exp, "remote", None) or {}).items()})
    if scores is not None:
        out.update(insertion=scores.insertion, deletion=scores.deletion, diffauc=scores.diff)
    return out


def class_scores(exp, scores) -> dict[int, Any]:
    """``scores`` as ``{class index: CurveScores}``: a mapping as given, one CurveScores as the first
    class's, None as none."""
    if scores is None:
        return {}
    return dict(scores) if isinstance(scores, Mapping) else {exp.target: scores}


def write_run_files(folder: str | Path, image_id: str, exp, scores=None) -> Path:
    """The files a tracked explanation carries: saliency .npy/.png, overlay, JSON, curves plot, config YAML.

    With several classes (``exp.targets``) the maps and curves go to one folder per class
    (:func:`decam.tracking.classes.write_class_files`); ``scores`` is then ``{class index: CurveScores}``
    (or one CurveScores: the first class's)."""
    from omegaconf import OmegaConf

    from decam.io import atomic_open
    from decam.io.outputs import write_explanation
    from decam.tracking.charts import curves_plot
    from decam.tracking.classes import is_several, write_class_files

    folder = Path(folder)
    if is_several(exp):
        write_class_files(folder, image_id, exp, class_scores(exp, scores))
    else:
        write_explanation(folder, image_id, exp)
        scores = class_scores(exp, scores).get(exp.target)
        if scores is not None:
            curves_plot(folder / "curves.png", scores.insertion_curve, scores.deletion_curve,
                        f"{Path(image_id).stem}: DiffAUC {scores.diff:.3f}")
    with atomic_open(folder / "config.yaml", "w") as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(exp.config)))
    return folder


def log_explanation(
    tracker: Tracker,
    exp,
    image_id: str,
    scores=None,
    *,
    run_name: str | None = None,
    parent: str | None = None,
    tags: Mapping[str, str] | None = None,
    folder: str | Path | None = None,
) -> str:
    """Log one :class:`~decam.search.explainer.Explanation` (and its :class:`~decam.evaluation.metrics.CurveScores`) as a run.

    ``folder``: where the artifact files are written first (kept); default a temporary folder. An
    explanation of several classes is still one run, with per-class artifact folders and metrics
    (:mod:`decam.tracking.classes`; ``scores``: ``{class index: CurveScores}`` from
    :func:`~decam.tracking.classes.score_targets`) and the classes as param ``targets``.
    """
    from decam.tracking.classes import class_metrics, is_several

    tags = {"decam.image": image_id, **(tags or {})}
    params, per_class = run_params(exp.config, image_id), class_scores(exp, scores)
    metrics = explanation_metrics(exp, per_class.get(exp.target))
    if is_several(exp):
        params["targets"] = ",".join(str(t.target) for t in exp.targets)
        metrics.update(class_metrics(exp, per_class))
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="decam-run-"))
        write_run_files(folder, image_id, exp, scores)
        return log_record(
            tracker,
            run_name or Path(image_id).stem,
            params=params,
            metrics=metrics,
            series=history_rows(exp.history, exp.queries),
            folder=folder,
            tags=tags,
            parent=parent,
        )


def log_evaluation(
    tracker: Tracker,
    rows: list,
    *,
    name: str = "evaluation",
    params: Mapping[str, Any] | None = None,
    folder: str | Path | None = None,
) -> str:
    """A method comparison as one parent run (``params``, the files in ``folder``) with one child run per
    row (an image × method — × class when images have several, ``rank`` > 1 — with ``image``, ``method``,
    ``insertion``, ``deletion``, ``diff`` or ``diffauc``, ``seconds``, ``queries``; dataclasses or
    mappings). Returns the parent's id."""
    import dataclasses

    with tracker.run(name, {"decam.kind": "evaluation"}) as parent:
        if params:
            tracker.log_params(parent, params)
        records = [dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row) for row in rows]
        several = any(int(r.get("rank", 1)) > 1 for r in records)  # several classes per image: name the class
        for r in records:
            metrics = {k: r[k] for k in ("insertion", "deletion", "seconds", "queries") if k in r}
            metrics["diffauc"] = r.get("diffauc", r.get("diff"))
            extra = {k: v for k, v in r.items() if k not in metrics and k != "diff" and not isinstance(v, (list, dict))
                     and (several or k != "rank")}
            run_name = f"{Path(str(r['image'])).stem} {r['method']}" + (f" class {r['target']}" if several else "")
            log_record(tracker, run_name, params=extra, metrics=metrics,
                       tags={"decam.method": str(r["method"]), "decam.image": str(r["image"])}, parent=parent)
        if folder is not None:
            tracker.log_artifacts(parent, folder)
    return parent


def score_explanation(explainer, exp, n_steps: int | None = None):
    """Insertion/deletion :class:`~decam.evaluation.metrics.CurveScores` of ``exp`` (its first class's
    map) through the explainer's fast forward (the same precision and layout as its search), with the
    RISE reference substrates placed by the model's normalization. Every class's:
    :func:`decam.tracking.classes.score_targets`."""
    from decam.tracking.classes import score_map

    return score_map(explainer, exp.image, exp.saliency, exp.target, n_steps)
