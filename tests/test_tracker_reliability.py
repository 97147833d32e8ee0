"""The tracker under signals and shared stores: a run is never left RUNNING by a signal that lands
while it is created, and every experiment decam touches carries MLflow's experiment kind."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from decam.cli.app import stop_on_signals
from decam.errors import Terminated
from decam.tracking.store import KIND, KIND_TAG, Tracker


class FakeClient:
    """The few MlflowClient calls the tracker makes, recorded; ``on_create`` runs inside create_run."""

    def __init__(self, experiments: dict | None = None, on_create=None) -> None:
        self.experiments = experiments or {}
        self.on_create = on_create
        self.status: dict[str, str] = {}
        self.tags: list[tuple[str, str, str]] = []

    def create_run(self, experiment_id, tags=None, run_name=None):
        run_id = f"run{len(self.status)}"
        self.status[run_id] = "RUNNING"
        if self.on_create:
            self.on_create()
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id))

    def set_terminated(self, run_id, status):
        self.status[run_id] = status

    def get_experiment_by_name(self, name):
        return self.experiments.get(name)

    def create_experiment(self, name, artifact_location=None, tags=None):
        self.experiments[name] = SimpleNamespace(experiment_id="7", tags=dict(tags or {}))
        return "7"

    def set_experiment_tag(self, experiment_id, key, value):
        self.tags.append((experiment_id, key, value))


def tracker_with(client: FakeClient, experiment: str = "decam") -> Tracker:
    tracker = Tracker.__new__(Tracker)
    tracker.uri, tracker.experiment, tracker.client, tracker.experiment_id = "fake://", experiment, client, "7"
    return tracker


def test_sigterm_while_a_run_is_created_ends_it_killed(monkeypatch):
    client = FakeClient(on_create=lambda: os.kill(os.getpid(), signal.SIGTERM))
    tracker = tracker_with(client)
    body = []
    with stop_on_signals(), pytest.raises(Terminated):
        with tracker.run("image"):
            body.append("ran")  # the signal is delivered once the run exists, before the block
    assert client.status == {"run0": "KILLED"} and body == []


def test_a_run_ends_finished_or_failed_as_before():
    client = FakeClient()
    tracker = tracker_with(client)
    with tracker.run("ok"):
        pass
    with pytest.raises(ValueError), tracker.run("broken"):
        raise ValueError("boom")
    assert client.status == {"run0": "FINISHED", "run1": "FAILED"}


def test_experiments_get_the_model_development_kind():
    fresh = FakeClient()
    tracker = tracker_with(fresh, "new")
    assert tracker._experiment() == "7" and fresh.experiments["new"].tags == {KIND_TAG: KIND}

    untagged = FakeClient({"old": SimpleNamespace(experiment_id="3", tags={})})
    assert tracker_with(untagged, "old")._experiment() == "3"
    assert untagged.tags == [("3", KIND_TAG, "custom_model_development")]

    chosen = FakeClient({"mine": SimpleNamespace(experiment_id="4", tags={KIND_TAG: "genai_development"})})
    tracker_with(chosen, "mine")._experiment()
    assert chosen.tags == []  # a kind someone chose stays


def test_the_runs_table_link_picks_model_training_in_the_ui():
    tracker = tracker_with(FakeClient())
    assert tracker.experiment_url() == "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning"
    tracker.uri = "http://mlflow.lab:8080/"
    assert tracker.experiment_url() == "http://mlflow.lab:8080/#/experiments/7?workflowType=machine_learning"
