"""MLflow tracking of single runs: params, per-generation metrics, scores and artifacts in a real store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

mlflow = pytest.importorskip("mlflow")

from decam.cli import main  # noqa: E402
from decam.config import load_config  # noqa: E402
from decam.search.explainer import Explainer  # noqa: E402
from decam.tracking import (  # noqa: E402
    Tracker, TrackingError, log_evaluation, log_explanation, run_params, score_explanation, score_targets)

RUN = ["model=tiny_models:tiny", "generations=3", "searcher.popsize=8", "batch_size=16"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite tracking store for this module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    """A tiny black-box model importable as ``tiny_models:tiny`` and one 48x48 photo."""
    image = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)).save(image)
    return image


def search_runs(monkeypatch, uri: str, experiment: str):
    """``mlflow.search_runs`` on ``uri``: it reads the store from $MLFLOW_TRACKING_URI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow.search_runs(experiment_names=[experiment])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_params_are_the_flattened_config_with_dotted_keys():
    params = run_params(load_config(None, ["searcher.CR=0.5"]), "a.jpg")
    assert params["searcher.CR"] == "0.5" and params["encoding.name"] == "ellipses" and params["image"] == "a.jpg"
    assert params["budget"] == "null"


def test_logged_run_has_curves_scores_artifacts_and_reproduces(tiny, tmp_path, monkeypatch, store):
    uri = store
    explainer = Explainer(config=load_config(None, RUN))
    exp = explainer.explain(tiny)
    scores = score_explanation(explainer, exp, n_steps=16)
    tracker = Tracker(uri, "unit")
    run_id = log_explanation(tracker, exp, "photo.jpg", scores)

    runs = search_runs(monkeypatch, uri, "unit")
    assert list(runs.run_id) == [run_id] and runs.status[0] == "FINISHED"
    assert runs["params.searcher.CR"][0] == "0.2" and runs["params.image"][0] == "photo.jpg"
    assert runs["metrics.diffauc"][0] == pytest.approx(scores.diff)
    assert runs["metrics.queries"][0] == exp.queries
    client = mlflow.MlflowClient(uri)
    best = client.get_metric_history(run_id, "best")
    assert [m.step for m in best] == [1, 2, 3]
    assert [m.value for m in best] == pytest.approx([h["best"] for h in exp.history])
    queries = [m.value for m in sorted(client.get_metric_history(run_id, "queries"), key=lambda m: m.step)]
    assert queries[-1] == exp.queries and queries == sorted(queries)

    files = tracker.download(run_id, "", tmp_path / "art")
    saliency = np.load(files / "photo.saliency.npy")
    np.testing.assert_array_equal(saliency, exp.saliency)
    for png in ("photo.saliency.png", "photo.overlay.png", "curves.png"):
        assert Image.open(files / png).size[0] > 0
    again = Explainer(config=load_config(files / "config.yaml")).explain(tiny)
    np.testing.assert_array_equal(again.saliency, exp.saliency)  # the logged config reproduces the run


def test_explain_cli_logs_one_run_per_image(tiny, tmp_path, monkeypatch, store):
    uri = store
    rc = main(["explain", str(tiny), *RUN, "tracking.enabled=true", f"tracking.uri={uri}",
               "--out", str(tmp_path / "out"), "--quiet", "--experiment", "cli"])
    assert rc == 0
    runs = search_runs(monkeypatch, uri, "cli")
    assert len(runs) == 1 and runs["params.model"][0] == "tiny_models:tiny"
    assert 0 <= runs["metrics.insertion"][0] <= 1 and "metrics.deletion" in runs


def test_unreachable_store_keeps_local_outputs_and_fails_fast(tiny, tmp_path, capsys):
    start = time.monotonic()
    rc = main(["explain", str(tiny), *RUN, "--out", str(tmp_path / "out"), "--quiet", "--mlflow",
               "--tracking-uri", f"http://127.0.0.1:{_free_port()}"])
    assert rc == TrackingError.exit_code
    assert time.monotonic() - start < 60
    assert (tmp_path / "out" / "photo.saliency.npy").is_file() and (tmp_path / "out" / "photo.json").is_file()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("decam: warning: tracking store http://127.0.0.1")


@pytest.mark.skipif(shutil.which("mlflow", path=str(Path(sys.executable).parent)) is None
                    and shutil.which("mlflow") is None, reason="the mlflow command is not installed")
@pytest.mark.slow
def test_tracking_server_round_trip(tiny, tmp_path, monkeypatch):
    port = _free_port()
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    server = subprocess.Popen(
        [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job-queue workers: starts faster
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        explainer = Explainer(config=load_config(None, RUN))
        exp = explainer.explain(tiny)
        run_id = log_explanation(Tracker(uri, "served"), exp, "photo.jpg", score_explanation(explainer, exp, 8))
        runs = search_runs(monkeypatch, uri, "served")
        assert list(runs.run_id) == [run_id] and runs["params.image"][0] == "photo.jpg"
        saliency = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="photo.saliency.npy",
                                                       dst_path=str(tmp_path / "dl"))
        np.testing.assert_array_equal(np.load(saliency), exp.saliency)
    finally:  # the server runs its workers as children: stop the whole process group it leads
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_evaluation_rows_become_children_of_one_parent(store, tmp_path, monkeypatch):
    (tmp_path / "summary.md").write_text("| method | DiffAUC |\n")
    rows = [{"image": f"{i}.jpg", "method": m, "target": 3, "insertion": 0.5, "deletion": 0.25, "diff": 0.25,
             "seconds": 1.0, "queries": 10} for i in range(2) for m in ("decam", "gradcam")]
    parent = log_evaluation(Tracker(store, "eval"), rows, params={"model": "tiny"}, folder=tmp_path)
    df = search_runs(monkeypatch, store, "eval")
    children = df[df["tags.mlflow.parentRunId"] == parent]
    assert len(df) == 5 and len(children) == 4 and set(df.status) == {"FINISHED"}
    assert sorted(children["params.method"]) == ["decam", "decam", "gradcam", "gradcam"]
    assert (children["metrics.diffauc"] == 0.25).all()
    assert "summary.md" in {a.path for a in mlflow.MlflowClient(store).list_artifacts(parent)}


def test_several_classes_are_one_run_with_a_folder_and_metrics_per_class(tiny, tmp_path, monkeypatch, store):
    explainer = Explainer(config=load_config(None, RUN))
    exp = explainer.explain(tiny, "top3")
    classes = [t.target for t in exp.targets]
    scores = score_targets(explainer, exp, n_steps=16)
    assert list(scores) == classes and len(set(classes)) == 3
    assert scores[classes[1]].diff != pytest.approx(scores[classes[0]].diff)  # each class's own map and target
    tracker = Tracker(store, "classes")
    run_id = log_explanation(tracker, exp, "photo.jpg", scores)

    runs = search_runs(monkeypatch, store, "classes")
    assert list(runs.run_id) == [run_id]  # one run for the one search
    run = mlflow.MlflowClient(store).get_run(run_id)
    metrics = run.data.metrics
    for rank, t in enumerate(classes, start=1):
        assert metrics[f"class_{t}/diffauc"] == pytest.approx(scores[t].diff)
        assert metrics[f"class_{t}/insertion"] == pytest.approx(scores[t].insertion)
        assert metrics[f"class_{t}/deletion"] == pytest.approx(scores[t].deletion)
        assert metrics[f"class_{t}/rank"] == rank
    assert metrics["diffauc"] == pytest.approx(scores[classes[0]].diff)  # unprefixed: the searched class
    assert metrics["queries"] == exp.queries and run.data.params["targets"] == ",".join(map(str, classes))

    files = tracker.download(run_id, "", tmp_path / "art")
    assert not (files / "photo.saliency.npy").exists()
    for t in exp.targets:
        folder = files / f"class_{t.target}"
        np.testing.assert_array_equal(np.load(folder / "photo.saliency.npy"), t.saliency)
        for png in ("photo.saliency.png", "photo.overlay.png", "curves.png"):
            assert Image.open(folder / png).size[0] > 0
    record = json.loads((files / "photo.json").read_text())
    assert [e["target"] for e in record["targets"]] == classes
    assert record["targets"][1]["saliency"] == f"class_{classes[1]}/photo.saliency.npy"
    assert (files / "config.yaml").is_file()


def test_one_class_logs_the_same_keys_and_files_as_before(tiny, tmp_path, monkeypatch, store):
    explainer = Explainer(config=load_config(None, RUN))
    exp = explainer.explain(tiny, 3)
    run_id = log_explanation(Tracker(store, "one-class"), exp, "photo.jpg", score_explanation(explainer, exp, 16))
    run = mlflow.MlflowClient(store).get_run(run_id)
    assert set(run.data.metrics) == {"best", "mean", "median", "best_area", "queries", "seconds", "insertion",
                                     "deletion", "diffauc"}
    assert "targets" not in run.data.params
    files = sorted(p.relative_to(tmp_path / "a").as_posix()
                   for p in Tracker(store, "one-class").download(run_id, "", tmp_path / "a").rglob("*") if p.is_file())
    assert files == ["config.yaml", "curves.png", "photo.json", "photo.overlay.png", "photo.saliency.npy",
                     "photo.saliency.png"]


def test_explain_cli_logs_several_classes_as_one_run(tiny, tmp_path, monkeypatch, store, capsys):
    rc = main(["explain", str(tiny), *RUN, "--target", "1,2", f"tracking.uri={store}", "--out", str(tmp_path / "out"),
               "--experiment", "cli-classes"])
    assert rc == 0
    runs = search_runs(monkeypatch, store, "cli-classes")
    assert len(runs) == 1
    assert 0 <= runs["metrics.class_2/insertion"][0] <= 1 and "metrics.class_1/diffauc" in runs
    assert "DiffAUC class 1 " in capsys.readouterr().out
