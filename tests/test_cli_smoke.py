"""The quick start: ``decam explain`` with no arguments on the embedded photo and the offline model."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from decam.cli import main


def test_explain_embedded_default_photo(tmp_path, capsys):
    code = main(["explain", "--out", str(tmp_path), "--generations", "2", "--popsize", "8", "--quiet"])
    assert code == 0
    sal = np.load(tmp_path / "coffee.saliency.npy")
    assert sal.shape == (224, 224) and sal.dtype == np.float32 and 0 <= sal.min() and sal.max() == 1
    for name in ("coffee.saliency.png", "coffee.overlay.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size == (224, 224) and im.mode == "RGB"
    record = json.loads((tmp_path / "coffee.json").read_text())
    assert record["class_name"] == "espresso" and record["target"] == 967
    assert record["queries"] == 8 * 3 + 1 and record["config"]["generations"] == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary leftovers


def test_list_shows_registered_plugins(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("ellipses", "rectangles", "superpixels", "de", "paper", "efficientnet_lite0"):
        assert name in out


def test_bad_override_is_a_one_line_config_error(tmp_path, capsys):
    code = main(["explain", "--out", str(tmp_path), "searcher.CR=1.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "searcher.CR=1.5" in err and "[0, 1]" in err
    assert not any(tmp_path.iterdir())


def test_overrides_may_follow_options(tmp_path, capsys):
    code = main(["explain", "--out", str(tmp_path), "--quiet", "searcher.CR=1.5"])
    assert code == 2 and "searcher.CR=1.5" in capsys.readouterr().err
