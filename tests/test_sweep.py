"""Studies: a 2x2 grid becomes one MLflow parent with a child per (configuration, image), resumably."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

mlflow = pytest.importorskip("mlflow")

from decam.cli import main  # noqa: E402
from decam.errors import ConfigError  # noqa: E402
from decam.workflows.sweep import load_study, plan, run_study  # noqa: E402
from decam.tracking import Tracker  # noqa: E402

STUDY = """
name: tiny-grid
images: [{image}]
base:
  model: tiny_models:tiny
  generations: 3
  batch_size: 16
  searcher: {{name: de, popsize: 8}}
grid:
  searcher.CR: [0.2, 0.9]
  encoding.K: [2, 4]
metrics: {{n_steps: 8}}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite tracking store for this module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def study_file(tmp_path, monkeypatch) -> Path:
    image = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(image)
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(image=image))
    return path


def runs(monkeypatch, uri: str, experiment: str, filter_string: str = ""):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # mlflow.search_runs reads the store from here
    return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string)


@pytest.mark.slow
def test_grid_sweep_logs_parent_and_children_and_resumes_without_duplicates(study_file, tmp_path, monkeypatch, store):
    uri = store
    args = ["sweep", str(study_file), "--tracking-uri", uri, "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0

    df = runs(monkeypatch, uri, "tiny-grid")
    parents = df[df["tags.mlflow.parentRunId"].isna()]
    assert len(df) == 5 and len(parents) == 1 and set(df.status) == {"FINISHED"}
    parent = parents.run_id.iloc[0]
    children = runs(monkeypatch, uri, "tiny-grid", f"tags.`mlflow.parentRunId` = '{parent}'")
    assert len(children) == 4
    assert sorted(zip(children["params.searcher.CR"], children["params.encoding.K"])) == [
        ("0.2", "2"), ("0.2", "4"), ("0.9", "2"), ("0.9", "4")]
    assert children["metrics.diffauc"].between(-1, 1).all() and children["metrics.diffauc"].notna().all()
    client = mlflow.MlflowClient(uri)
    history = client.get_metric_history(children.run_id.iloc[0], "best")
    assert [m.step for m in history] == [1, 2, 3]

    summary = tracker_files(uri, parent, tmp_path / "dl")
    assert {"summary.csv", "summary.md", "diffauc_vs_searcher_CR.png", "diffauc_vs_encoding_K.png",
            "heatmap_searcher_CR_encoding_K.png"} <= summary
    assert (tmp_path / "out" / "summary" / "summary.md").read_text().count("\n| 0.") == 4

    assert main(args) == 0  # a rerun finds every child finished: nothing new
    again = runs(monkeypatch, uri, "tiny-grid")
    assert sorted(again.run_id) == sorted(df.run_id)
    assert set(again.status) == {"FINISHED"}


def tracker_files(uri: str, run_id: str, dst: Path) -> set[str]:
    folder = Tracker(uri, "tiny-grid").download(run_id, "summary", dst)
    return {p.name for p in folder.iterdir()}


def test_interrupted_sweep_marks_parent_killed_and_rerun_finishes_the_rest(study_file, tmp_path, monkeypatch, store):
    uri = store
    study = load_study(study_file, experiment="interrupted")
    tracker = Tracker(uri, study.experiment)
    done = []

    def stop_after_two(event, child, info):
        done.append(event)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(study, tracker, progress=stop_after_two)
    df = runs(monkeypatch, uri, "interrupted")
    assert sorted(df.status) == ["FINISHED", "FINISHED", "KILLED"]  # two children; the parent is not RUNNING

    result = run_study(study, tracker)
    assert (result.ran, result.skipped) == (2, 2) and len(result.rows) == 4
    df = runs(monkeypatch, uri, "interrupted")
    assert len(df) == 5 and set(df.status) == {"FINISHED"}


def test_study_errors_are_one_line_and_come_before_any_run(study_file, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(study_file.read_text().replace("grid:", "gird:"))
    with pytest.raises(ConfigError, match="unknown key 'gird'"):
        load_study(bad)
    assert load_study(study_file, ["metrics.n_steps=4", "grid.encoding.K=[3]"]).n_steps == 4
    with pytest.raises(ConfigError, match="metrics.bogus"):
        load_study(study_file, ["metrics.bogus=1"])
    uri = f"sqlite:///{tmp_path / 'never.db'}"
    assert main(["sweep", str(study_file), "--tracking-uri", uri, "--quiet", "grid.searcher.CR=[0.2,7]"]) == 2
    assert not (tmp_path / "never.db").exists()  # rejected before the store was touched


def test_random_sample_is_reproducible_and_in_range(study_file, tmp_path):
    text = study_file.read_text().split("grid:")[0] + (
        "sample:\n  n: 5\n  seed: 3\n  params:\n    searcher.CR: {uniform: [0.1, 0.9]}\n    encoding.K: [2, 4, 8]\n")
    path = tmp_path / "sample.yaml"
    path.write_text(text)
    a, b = load_study(path), load_study(path)
    assert a.points == b.points and len(a.points) == 5 and a.keys == ["searcher.CR", "encoding.K"]
    assert all(0.1 <= p["searcher.CR"] <= 0.9 and p["encoding.K"] in (2, 4, 8) for p in a.points)


def test_base_and_points_are_mapping_layers_and_a_swept_plugin_keeps_the_base_settings(study_file, tmp_path):
    """``base: {searcher: {popsize: 8}}`` applies to every searcher the grid switches to; CLI overrides stay strings."""
    text = study_file.read_text().split("grid:")[0] + "grid:\n  searcher: [de, cmaes]\nmetrics: {n_steps: 8}\n"
    path = tmp_path / "searchers.yaml"
    path.write_text(text.replace("searcher: {name: de, popsize: 8}", "searcher: {popsize: 8}"))
    study = load_study(path, ["generations=2"])
    assert study.base == [{"model": "tiny_models:tiny", "generations": 3, "batch_size": 16,
                           "searcher": {"popsize": 8}}, "generations=2"]
    configs = [child.config for child in plan(study)]
    assert [(c.searcher.name, c.searcher.popsize, c.generations) for c in configs] == [("de", 8, 2), ("cmaes", 8, 2)]
    assert "CR" not in configs[1].searcher  # the switched-to plugin starts from its own defaults
    bad = tmp_path / "bad_base.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(text), "base": ["generations=3"]}))
    with pytest.raises(ConfigError, match="base must be a mapping"):
        load_study(bad)
