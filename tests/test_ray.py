"""Ray: ``decam explain --ray`` and ``decam evaluate --ray`` give a local run's maps and scores;
``actors`` spread one search's fitness evaluation and find the same evidence."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import decam
from decam.cli import main
from decam.errors import ConfigError

from conftest import PAPER_CONFIG

ray = pytest.importorskip("ray")
TESTS = Path(__file__).parent
WORKER_ENV = {"PYTHONPATH": str(TESTS), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}  # workers import tiny_models


@pytest.fixture(scope="module")
def local_cluster():
    """A local Ray instance with 2 CPUs, started here as a cluster head; yields its address."""
    saved = {key: os.environ.get(key) for key in WORKER_ENV}
    os.environ.update(WORKER_ENV)  # the instance's workers inherit this environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def shaded_images(folder: Path) -> list[str]:
    for i, shade in enumerate((255, 200, 150)):
        Image.new("RGB", (64, 64), (shade, shade, shade)).save(folder / f"img{i}.png")
    (folder / "bad.png").write_text("not an image")
    return sorted(map(str, folder.glob("*.png")))


@pytest.mark.slow
def test_ray_gives_the_same_maps_as_a_local_run(tmp_path):
    env = dict(os.environ, **WORKER_ENV)
    common = [sys.executable, "-m", "decam", "explain", *shaded_images(tmp_path),
              "--model", "tiny_models:tiny", "--budget", "64", "--popsize", "8", "--quiet"]
    remote = subprocess.run(common + ["--out", str(tmp_path / "ray"), "--ray"], env=env, capture_output=True,
                            text=True, timeout=600)
    local = subprocess.run(common + ["--out", str(tmp_path / "local")], env=env, capture_output=True, text=True,
                           timeout=600)
    assert remote.returncode == local.returncode == 1, remote.stderr[-2000:]  # bad.png fails, the rest succeed
    assert "bad.png" in remote.stderr
    for i in range(3):
        a = np.load(tmp_path / "ray" / f"img{i}.saliency.npy")
        b = np.load(tmp_path / "local" / f"img{i}.saliency.npy")
        assert np.array_equal(a, b)
        assert json.loads((tmp_path / "ray" / f"img{i}.json").read_text())["queries"] <= 65


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_evaluate_over_a_ray_cluster_gives_the_scores_of_a_local_run(local_cluster, tmp_path):
    """A second driver joins the cluster by address, as ``decam evaluate … --ray HEAD:6379`` does."""
    common = ["evaluate", *shaded_images(tmp_path), "--model", "tiny_models:tiny", "--methods", "decam,rise,gaussian",
              "--budget", "64", "--popsize", "8", "--gallery", "2", "--quiet"]
    local = main(common + ["--out", str(tmp_path / "local")])
    remote = subprocess.run([sys.executable, "-m", "decam", *common, "--out", str(tmp_path / "ray"),
                             "--ray", local_cluster], env=dict(os.environ, **WORKER_ENV), capture_output=True,
                            text=True, timeout=300)
    assert remote.returncode == local == 1, remote.stderr[-2000:]  # bad.png fails, the rest are scored
    assert "bad.png" in remote.stderr
    rows = read_rows(tmp_path / "ray" / "results.csv")
    assert rows == read_rows(tmp_path / "local" / "results.csv")  # same images, order, targets and scores
    assert [r["stem"] for r in rows] == [f"img{i}" for i in range(3) for _ in range(3)]
    for i in range(3):
        for method in ("decam", "rise", "gaussian"):
            a = np.load(tmp_path / "ray" / "maps" / f"img{i}" / f"{method}.npy")
            assert np.array_equal(a, np.load(tmp_path / "local" / "maps" / f"img{i}" / f"{method}.npy"))
        assert (tmp_path / "ray" / "curves" / f"img{i}.png").is_file()
    assert "Skipped images (1)" in (tmp_path / "ray" / "summary.md").read_text()
    assert (tmp_path / "ray" / "gallery.png").is_file()


def top_pixels_inside(saliency: np.ndarray, region: np.ndarray) -> float:
    """Of the region's size in most salient pixels, the fraction that lie in the region."""
    top = np.argsort(saliency.ravel())[::-1][: region.sum()]
    return float(region.ravel()[top].mean())


@pytest.mark.slow
def test_actors_share_one_search_and_find_the_evidence_like_a_local_run(local_cluster):
    from decam.search.explainer import _cached_model

    image = torch.ones(3, 48, 48)
    settings = dict(alpha=20.0, generations=100, popsize=16, config=PAPER_CONFIG, aggregator="evaluated")
    model = _cached_model("tiny_models:oracle", None).forward  # the driver's copy of the black box
    region = model.region_mask(48, 48).numpy()  # 11 % of the image
    for actors in (0, 2):  # the evaluated aggregator: every batch the actors scored reaches its observer
        calls = model.calls
        exp = decam.explain("tiny_models:oracle", image, actors=actors, **settings)
        assert exp.queries == 16 * (100 + 1) + 1
        # with actors the driver only scores the unmasked image; the actors' own models did the rest
        assert model.calls - calls == (1 if actors else exp.queries)
        assert top_pixels_inside(exp.saliency, region) > 0.8
        assert exp.saliency[region].mean() > 2 * exp.saliency[~region].mean()
        assert region[np.unravel_index(exp.saliency.argmax(), exp.saliency.shape)]


def test_actors_need_a_model_they_can_load_by_name():
    with pytest.raises(ConfigError, match="actors=2: each actor loads the model itself"):
        decam.explain(lambda x: x.mean(dim=(1, 2, 3))[:, None].repeat(1, 2), torch.ones(3, 48, 48), actors=2)
