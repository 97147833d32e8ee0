"""One MLflow tracking store: the client, its errors, and the run lifecycle.

All writes go through one ``MlflowClient`` with explicit run ids from the calling (main) process:
MLflow's fluent API keeps a global active-run stack and is not thread-safe. A store that fails
raises :class:`TrackingError` (one line); callers keep their local outputs and carry on.

Several processes may share one SQLite store: creating its tables and the experiment happens
under a file lock beside the database, and a write that meets SQLite's ``database is locked`` is
retried (with backoff, for up to ``LOCKED_PATIENCE`` seconds) instead of failing. Experiments
carry MLflow's experiment-kind tag for model development, which MLflow 3.4–3.11's UI reads to open
them in the runs table rather than the GenAI overview (3.12+ decide by a switch in the browser:
:meth:`Tracker.experiment_url` links straight to the runs table).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from decam import interrupts
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
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
"""MLflow 3's experiment kind: without it the UI may open an experiment as a GenAI one (traces)."""
LOCKED_PATIENCE = 120.0
"""Seconds a store write keeps retrying while SQLite says ``database is locked``."""
T = TypeVar("T")


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


def is_locked(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is SQLite's ``database is locked`` / ``busy``: worth a retry."""
    seen = 0
    while error is not None and seen < 8:
        text = str(error).lower()
        if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def retry_locked(call: Callable[[], T], patience: float = LOCKED_PATIENCE) -> T:
    """``call()``, again after a short random pause while another process holds SQLite's write lock."""
    deadline, pause = time.monotonic() + patience, 0.05
    while True:
        try:
            return call()
        except Exception as e:
            if not is_locked(e) or time.monotonic() > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 2.0)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store URI, else None."""
    return Path(uri[len("sqlite:///"):]).resolve() if uri.startswith("sqlite:///") else None


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
        with store_errors(f"tracking store {self.uri}"), self.lock("store"):
            self.client = mlflow.MlflowClient(self.uri)
            self.experiment_id = retry_locked(self._experiment)

    def _experiment(self) -> str:
        """The experiment's id, created (or tagged) with the experiment kind when it lacks one."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self.client.create_experiment(self.experiment, artifact_location=self._artifact_root(),
                                                     tags={KIND_TAG: KIND})
            except Exception:  # another process created it first (a store without decam's lock: a server)
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if KIND_TAG not in (found.tags or {}):  # a kind the user chose stays
            self.client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
        return found.experiment_id

    def experiment_url(self, ui: str = "http://127.0.0.1:5000") -> str:
        """The experiment's runs table in the MLflow UI at ``ui`` (a tracking server's own address when
        the store is one). MLflow 3.12+ opens experiments by a GenAI / model-training switch kept in
        the browser, not by the experiment-kind tag; the URL's ``workflowType`` picks the runs table."""
        base = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else ui.rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}?workflowType=machine_learning"

    @property
    def lock_dir(self) -> Path | None:
        """Where processes sharing this store meet for locks and claims: the SQLite database's folder
        (None for other stores, which decam cannot lock)."""
        db = sqlite_path(self.uri)
        return db.parent if db is not None else None

    def lock(self, name: str):
        """A cross-process lock named ``name`` for this store (a no-op for stores decam cannot lock)."""
        from decam.io.claims import FileLock, lock_path

        db = sqlite_path(self.uri)
        if db is None or not db.parent.is_dir():
            return contextlib.nullcontext()
        return FileLock(lock_path(db.parent, f"{db.name}.{name}"))

    def _artifact_root(self) -> str | None:
        """For a SQLite store, artifacts go beside the database (MLflow would use ./mlruns in the cwd)."""
        db = sqlite_path(self.uri)
        return None if db is None else (db.parent / "mlartifacts" / self.experiment).as_uri()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """``call()`` against the store: retried while SQLite is locked, any failure a TrackingError."""
        with store_errors(f"tracking store {self.uri}: {what}"):
            return retry_locked(call)

    def start_run(self, name: str, tags: Mapping[str, str] | None = None, parent: str | None = None) -> str:
        """Create a RUNNING run (a child of ``parent`` when given) and return its id."""
        tags = dict(tags or {})
        if parent is not None:
            tags[PARENT_TAG] = parent
        return self._call(f"create run {name!r}",
                          lambda: self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._call(f"end run {run_id}", lambda: self.client.set_terminated(run_id, status))

    @contextlib.contextmanager
    def lifecycle(self, create: Callable[[], str]) -> Iterator[str]:
        """The run lifecycle, once for every caller: the run ``create()`` makes (or reopens) ends
        FINISHED when the block succeeds, KILLED on Ctrl-C or SIGTERM, FAILED on any other error;
        never left RUNNING. A signal while the run is created or ended waits for that to be done
        (:func:`decam.interrupts.deferred`). A store that fails while ending a failed run does not
        hide the original error."""
        run_id = None
        try:
            with interrupts.deferred():
                run_id = create()
            yield run_id
        except BaseException as e:
            if run_id is not None:
                with contextlib.suppress(Exception):
                    self.end_run(run_id, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            raise
        with interrupts.deferred():
            self.end_run(run_id)

    def ending(self, run_id: str):
        """``with tracker.ending(run_id):`` :meth:`lifecycle` for a run that exists."""
        return self.lifecycle(lambda: run_id)

    def run(self, name: str, tags: Mapping[str, str] | None = None, parent: str | None = None):
        """``with tracker.run(name) as run_id:`` a new run with :meth:`lifecycle`."""
        return self.lifecycle(lambda: self.start_run(name, tags, parent))

    def reopen(self, run_id: str) -> None:
        """Mark a finished or interrupted run RUNNING again (a resumed study)."""
        self._call(f"reopen run {run_id}", lambda: self.client.update_run(run_id, status="RUNNING"))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self._call("log params", lambda i=i: self.client.log_batch(run_id, params=items[i:i + _BATCH_PARAMS]))

    def log_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._call("log tags", lambda: self.client.log_batch(run_id, tags=items))

    def log_metrics(self, run_id: str, rows: list[tuple[str, float, int]]) -> None:
        """``(key, value, step)`` triples in batches; non-finite values are skipped."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, int(s)) for k, v, s in rows if v is not None and math.isfinite(v)]
        for i in range(0, len(items), _BATCH_METRICS):
            self._call("log metrics", lambda i=i: self.client.log_batch(run_id, metrics=items[i:i + _BATCH_METRICS]))

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        self._call("log artifacts", lambda: self.client.log_artifacts(run_id, str(folder), artifact_path))

    def search(self, filter_string: str = "") -> list:
        """Every active run of the experiment matching ``filter_string`` (all pages)."""
        out, token = [], None
        while True:
            page = self._call("search runs", lambda t=token: self.client.search_runs(
                [self.experiment_id], filter_string, max_results=1000, page_token=t))
            out += list(page)
            token = page.token
            if not token:
                return out

    def children(self, parent: str) -> list:
        return self.search(f"tags.`{PARENT_TAG}` = '{parent}'")

    def delete_run(self, run_id: str) -> None:
        self._call(f"delete run {run_id}", lambda: self.client.delete_run(run_id))

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        return self._call(f"download {path}", lambda: Path(self.client.download_artifacts(run_id, path, str(dst))))


