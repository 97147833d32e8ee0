"""One MLflow tracking store: the client, its errors, and the run lifecycle.

All writes go through one ``MlflowClient`` with explicit run ids from the calling (main) process:
MLflow's fluent API keeps a global active-run stack and is not thread-safe. A store that fails
raises :class:`TrackingError` (one line); callers keep their local outputs and carry on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from decam.errors import DecamError

DEFAULT_EXPERIMENT = "decam"
PARENT_TAG = "mlflow.parentRunId"
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

    @contextlib.contextmanager
    def ending(self, run_id: str) -> Iterator[str]:
        """The run lifecycle, once for every caller: ``run_id`` ends FINISHED when the block succeeds,
        KILLED on Ctrl-C (or SIGTERM turned into it), FAILED on any other error; never left RUNNING.
        A store that fails while ending a failed run does not hide the original error."""
        try:
            yield run_id
        except BaseException as e:
            with contextlib.suppress(Exception):
                self.end_run(run_id, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            raise
        self.end_run(run_id)

    def run(self, name: str, tags: Mapping[str, str] | None = None, parent: str | None = None):
        """``with tracker.run(name) as run_id:`` a new run with :meth:`ending`'s lifecycle."""
        return self.ending(self.start_run(name, tags, parent))

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


