"""A plugin shipped by another package is usable by name from the CLI once installed.

"Installed" is simulated exactly as pip leaves it: a module plus a ``*.dist-info`` folder whose
``entry_points.txt`` declares the plugin in the ``decam.encodings`` group, on the path of a fresh
interpreter.
"""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

PLUGIN = '''
"""acme-masks: a third-party decam encoding."""

import torch

import decam
from decam.encodings.base import Encoding


@decam.register_encoding("halves")
class Halves(Encoding):
    """Keeps the image's left half, its right half, both or neither, one gene each."""

    genome_length = 2

    def render(self, genomes: torch.Tensor) -> torch.Tensor:
        keep = (genomes > 0.5).to(genomes.dtype)  # (N, 2)
        left = torch.arange(self.width, device=genomes.device) < self.width // 2
        cols = torch.where(left, keep[:, :1], keep[:, 1:])  # (N, W)
        return cols[:, None, :].expand(-1, self.height, -1).contiguous()
'''

RUN_CLI = "import sys; from decam.cli import main; sys.exit(main(['list']) or main(sys.argv[1:]))"


def install_fake_package(site: Path) -> None:
    (site / "acme_masks.py").write_text(PLUGIN)
    info = site / "acme_masks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-masks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[decam.encodings]\nhalves = acme_masks:Halves\n")


@pytest.mark.slow
def test_installed_plugin_is_listed_and_usable_by_name_from_the_cli(tmp_path):
    site, out = tmp_path / "site", tmp_path / "out"
    site.mkdir()
    install_fake_package(site)
    tests_dir = Path(__file__).resolve().parent  # for the tiny model, tiny_models:tiny
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    args = ["explain", "--model", "tiny_models:tiny", "--out", str(out), "--budget", "40", "--popsize", "4",
            "--quiet", "encoding=halves"]
    proc = subprocess.run([sys.executable, "-c", RUN_CLI, *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    listed = proc.stdout.splitlines()
    row = next(i for i, line in enumerate(listed) if line.split()[:1] == ["halves"])
    assert "Keeps the image's left half, its right half, both or neither, one gene each." in listed[row + 1]

    record = json.loads((out / "coffee.json").read_text())
    assert record["config"]["encoding"] == {"name": "halves"}
    assert record["queries"] <= 40 + 1
    saliency = np.load(out / "coffee.saliency.npy")
    assert saliency.shape == (48, 48)
    # a halves mask is constant down each column and splits in the middle
    assert (saliency == saliency[:1]).all() and len(np.unique(saliency[0, :24])) == 1
