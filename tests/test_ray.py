"""decam explain --ray: images spread over a (local) Ray cluster give the same maps as a local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray")
TESTS = Path(__file__).parent


def test_ray_gives_the_same_maps_as_a_local_run(tmp_path):
    for i, shade in enumerate((255, 200, 150)):
        Image.new("RGB", (64, 64), (shade, shade, shade)).save(tmp_path / f"img{i}.png")
    (tmp_path / "bad.png").write_text("not an image")
    env = dict(os.environ, PYTHONPATH=str(TESTS), RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    common = [sys.executable, "-m", "decam.cli", "explain", *sorted(map(str, tmp_path.glob("*.png"))),
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
