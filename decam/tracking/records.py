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


def write_run_files(folder: str | Path, image_id: str, exp, scores=None) -> Path:
    """The files a tracked explanation carries: saliency .npy/.png, overlay, JSON, curves plot, config YAML."""
    from omegaconf import OmegaConf

    from decam.tracking.charts import curves_plot
    from decam.io import atomic_open
    from decam.io.outputs import write_explanation

    folder = Path(folder)
    write_explanation(folder, image_id, exp)
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

    ``folder``: where the artifact files are written first (kept); default a temporary folder.
    """
    tags = {"decam.image": image_id, **(tags or {})}
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="decam-run-"))
        write_run_files(folder, image_id, exp, scores)
        return log_record(
            tracker,
            run_name or Path(image_id).stem,
            params=run_params(exp.config, image_id),
            metrics=explanation_metrics(exp, scores),
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
    row (an image × method with ``image``, ``method``, ``insertion``, ``deletion``, ``diff`` or
    ``diffauc``, ``seconds``, ``queries``; dataclasses or mappings). Returns the parent's id."""
    import dataclasses

    with tracker.run(name, {"decam.kind": "evaluation"}) as parent:
        if params:
            tracker.log_params(parent, params)
        for row in rows:
            r = dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)
            metrics = {k: r[k] for k in ("insertion", "deletion", "seconds", "queries") if k in r}
            metrics["diffauc"] = r.get("diffauc", r.get("diff"))
            extra = {k: v for k, v in r.items() if k not in metrics and k != "diff" and not isinstance(v, (list, dict))}
            log_record(tracker, f"{Path(str(r['image'])).stem} {r['method']}", params=extra, metrics=metrics,
                       tags={"decam.method": str(r["method"]), "decam.image": str(r["image"])}, parent=parent)
        if folder is not None:
            tracker.log_artifacts(parent, folder)
    return parent


def score_explanation(explainer, exp, n_steps: int | None = None):
    """Insertion/deletion :class:`~decam.evaluation.metrics.CurveScores` of ``exp`` through the
    explainer's fast forward (the same precision and layout as its search), with the RISE reference
    substrates placed by the model's normalization."""
    from decam.evaluation.metrics import N_STEPS, insertion_deletion
    from decam.models import ModelRunner

    image = exp.image.to(explainer.device)
    runner = ModelRunner(explainer.forward, explainer.config.batch_size)
    return insertion_deletion(runner, image, exp.saliency, exp.target, n_steps=n_steps or N_STEPS,
                              batch_size=runner.batch_size, normalization=explainer.model.normalization)
