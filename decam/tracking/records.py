"""MLflow tracking: every explanation becomes a run with its config, fitness curve, scores and pictures.

The only module that imports mlflow, and only when tracking is used. All writes go through one
``MlflowClient`` with explicit run ids from the calling (main) process: MLflow's fluent API keeps
a global active-run stack and is not thread-safe. A store that fails raises :class:`TrackingError`
(one line); callers keep their local outputs and carry on without tracking.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from decam.errors import DecamError

DEFAULT_EXPERIMENT = "decam"
PARENT_TAG = "mlflow.parentRunId"
SERIES = ("best", "mean", "median", "best_area", "queries")
"""``Explanation.history`` keys logged per generation (``step`` = generation)."""
HTTP_LIMITS = {
    # MLflow's defaults (120 s timeout, 7 retries with backoff) can stall a run for minutes.
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_BATCH_PARAMS, _BATCH_METRICS = 100, 1000  # MLflow's per-request limits


class TrackingError(DecamError):
    """The tracking store could not be reached or refused a write (exit code 5; local outputs are kept)."""

    exit_code = 5


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise TrackingError("tracking needs mlflow: pip install 'mlflow>=3'") from None
    return mlflow


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn any failure of the store (network, database, permissions) into a one-line TrackingError."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as e:  # the store is an external system: every failure means "tracking failed"
        lines = str(e).strip().splitlines()
        detail = lines[0][:300] if lines else type(e).__name__
        raise TrackingError(f"{what}: {detail}") from e


def bound_http_timeouts(uri: str) -> None:
    """For http(s) stores, cap MLflow's request timeout and retries unless the user set them."""
    if uri.startswith(("http://", "https://")):
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)


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


class Tracker:
    """One MLflow experiment in one tracking store (``uri`` None: MLflow's default, or $MLFLOW_TRACKING_URI)."""

    def __init__(self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> None:
        mlflow = _mlflow()
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating tables" chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.uri = uri or mlflow.get_tracking_uri()
        bound_http_timeouts(self.uri)
        self.experiment = experiment
        with store_errors(f"tracking store {self.uri}"):
            self.client = mlflow.MlflowClient(self.uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=self._artifact_root())
            else:
                self.experiment_id = found.experiment_id

    def _artifact_root(self) -> str | None:
        """For a SQLite store, artifacts go beside the database (MLflow would use ./mlruns in the cwd)."""
        if not self.uri.startswith("sqlite:///"):
            return None
        db = Path(self.uri[len("sqlite:///"):]).resolve()
        return (db.parent / "mlartifacts" / self.experiment).as_uri()

    def _do(self, what: str):
        return store_errors(f"tracking store {self.uri}: {what}")

    def start_run(self, name: str, tags: Mapping[str, str] | None = None, parent: str | None = None) -> str:
        """Create a RUNNING run (a child of ``parent`` when given) and return its id."""
        tags = dict(tags or {})
        if parent is not None:
            tags[PARENT_TAG] = parent
        with self._do(f"create run {name!r}"):
            return self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        with self._do(f"end run {run_id}"):
            self.client.set_terminated(run_id, status)

    def reopen(self, run_id: str) -> None:
        """Mark a finished or interrupted run RUNNING again (a resumed study)."""
        with self._do(f"reopen run {run_id}"):
            self.client.update_run(run_id, status="RUNNING")

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        with self._do("log params"):
            for i in range(0, len(items), _BATCH_PARAMS):
                self.client.log_batch(run_id, params=items[i:i + _BATCH_PARAMS])

    def log_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        with self._do("log tags"):
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, run_id: str, rows: list[tuple[str, float, int]]) -> None:
        """``(key, value, step)`` triples in batches; non-finite values are skipped."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, int(s)) for k, v, s in rows if v is not None and math.isfinite(v)]
        with self._do("log metrics"):
            for i in range(0, len(items), _BATCH_METRICS):
                self.client.log_batch(run_id, metrics=items[i:i + _BATCH_METRICS])

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        with self._do("log artifacts"):
            self.client.log_artifacts(run_id, str(folder), artifact_path)

    def search(self, filter_string: str = "") -> list:
        """Every active run of the experiment matching ``filter_string`` (all pages)."""
        out, token = [], None
        with self._do("search runs"):
            while True:
                page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
                out += list(page)
                token = page.token
                if not token:
                    return out

    def children(self, parent: str) -> list:
        return self.search(f"tags.`{PARENT_TAG}` = '{parent}'")

    def delete_run(self, run_id: str) -> None:
        with self._do(f"delete run {run_id}"):
            self.client.delete_run(run_id)

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        with self._do(f"download {path}"):
            return Path(self.client.download_artifacts(run_id, path, str(dst)))


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
    run_id = tracker.start_run(name, tags, parent)
    try:
        if params:
            tracker.log_params(run_id, params)
        rows = list(series or [])
        last_step = max((s for _, _, s in rows), default=0)
        seen = set(rows)  # a final value equal to the series' last point is already logged
        finals = [(k, float(v), last_step) for k, v in (metrics or {}).items()]
        tracker.log_metrics(run_id, rows + [r for r in finals if r not in seen])
        if folder is not None:
            tracker.log_artifacts(run_id, folder)
    except BaseException:
        with contextlib.suppress(Exception):
            tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id)
    return run_id


def explanation_metrics(exp, scores=None) -> dict[str, float]:
    """Final metrics of one explanation: insertion, deletion, diffauc (when scored), queries, seconds."""
    out = {"queries": float(exp.queries), "seconds": float(exp.seconds)}
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

    parent = tracker.start_run(name, {"decam.kind": "evaluation"})
    try:
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
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            tracker.end_run(parent, "KILLED")
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            tracker.end_run(parent, "FAILED")
        raise
    tracker.end_run(parent)
    return parent


def score_explanation(explainer, exp, n_steps: int | None = None):
    """Insertion/deletion :class:`~decam.evaluation.metrics.CurveScores` of ``exp`` through the
    explainer's fast forward (the same precision and layout as its search)."""
    from decam.evaluation.metrics import N_STEPS, insertion_deletion
    from decam.models import ModelRunner

    image = exp.image.to(explainer.device)
    runner = ModelRunner(explainer.forward, explainer.config.batch_size)
    return insertion_deletion(runner, image, exp.saliency, exp.target, n_steps=n_steps or N_STEPS,
                              batch_size=runner.batch_size)
