"""``decam explain --resume`` continues a search, not just an image: a run stopped mid-search leaves
the image's checkpoint (``.<stem>.search.pt``) and no outputs; ``--resume`` continues it from its
last finished generation, paying only the queries left, with the uninterrupted map. The model
counts what it is asked (``tiny_models:counted``); SIGTERM reaches the run as from a scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import METER

from decam.cli import main
from decam.io.claims import try_claim

RUN = ["--model", "tiny_models:counted", "--generations", "6", "--popsize", "8", "batch_size=8", "--quiet"]
"""batch 8: one search at a time, in the main thread; a generation costs 8 images (the first 16)."""
OUTPUTS = ["json", "overlay.png", "saliency.npy", "saliency.png"]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def explain(photos: Path, out: Path, *extra: str, sigterm_after: int | None = None) -> tuple[int, int]:
    """The exit code of ``decam explain`` and the images the model scored."""
    METER.reset(sigterm_after)
    code = main(["explain", str(photos), "--out", str(out), *RUN, *extra])
    return code, METER.images


def files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


@pytest.fixture
def whole(photos: Path, tmp_path: Path) -> dict:
    """An uninterrupted run: its folder, and per image its record and the images the model scored."""
    out = tmp_path / "whole"
    code, paid = explain(photos, out)
    records = {i: json.loads((out / f"img{i}.json").read_text()) for i in range(2)}
    assert code == 0 and paid == sum(r["queries"] for r in records.values())  # nothing but the searches' queries
    return {"out": out, "records": records}


def interrupt(photos: Path, out: Path, whole: dict) -> dict:
    """Stop a run by SIGTERM in img1's third generation; img1's checkpoint (2 generations done)."""
    first = whole["records"][0]["queries"]
    code, _ = explain(photos, out, sigterm_after=first + 1 + 16 + 8 + 3)
    assert code == 143
    assert files(out) == [".img1.search.pt", *(f"img0.{suffix}" for suffix in OUTPUTS)]  # nothing of img1 but it
    saved = torch.load(out / ".img1.search.pt", weights_only=True)
    assert len(saved["history"]) == 2 and saved["queries"] == 16 + 8
    return saved


def test_resume_continues_the_interrupted_search_and_pays_only_what_is_left(photos, tmp_path, whole, one_thread):
    out = tmp_path / "out"
    saved = interrupt(photos, out, whole)
    finished = (out / "img0.saliency.npy").stat().st_mtime_ns
    code, paid = explain(photos, out, "--resume")
    assert code == 0
    record, expected = json.loads((out / "img1.json").read_text()), whole["records"][1]
    assert paid == expected["queries"] - 1 - saved["queries"]  # neither the unmasked image nor 2 generations again
    assert record["queries"] == expected["queries"] and record["history"] == expected["history"]
    for i in range(2):
        assert np.array_equal(np.load(out / f"img{i}.saliency.npy"), np.load(whole["out"] / f"img{i}.saliency.npy"))
    assert (out / "img0.saliency.npy").stat().st_mtime_ns == finished  # skipped: complete
    assert not [name for name in files(out) if name.startswith(".")]  # the checkpoint went with the search


@pytest.mark.parametrize("case", ["without-resume", "other-config", "other-image"])
def test_a_checkpoint_is_not_continued_without_resume_or_by_another_search(case, photos, tmp_path, whole,
                                                                          one_thread):
    out = tmp_path / "out"
    interrupt(photos, out, whole)
    rerun = {"without-resume": [], "other-config": ["--resume", "alpha=2.0"], "other-image": ["--resume"]}[case]
    if case == "other-image":  # the same name, another picture
        Image.open(photos / "img1.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photos / "img1.png")
    reference = tmp_path / "reference"
    assert explain(photos, reference, *rerun[1:])[0] == 0  # the rerun's searches, uninterrupted
    cost = [json.loads((reference / f"img{i}.json").read_text())["queries"] for i in range(2)]
    code, paid = explain(photos, out, *rerun)
    assert code == 0 and paid == (sum(cost) if not rerun else cost[1])  # img1 from scratch (img0 too, not resuming)
    assert np.array_equal(np.load(out / "img1.saliency.npy"), np.load(reference / "img1.saliency.npy"))
    assert not [name for name in files(out) if name.startswith(".")]


def test_a_checkpoint_belongs_to_the_run_holding_the_image(photos, tmp_path, whole, one_thread):
    out = tmp_path / "out"
    interrupt(photos, out, whole)
    checkpoint = (out / ".img1.search.pt").read_bytes()
    claim = try_claim(out, "img1")  # another run is searching img1
    try:
        for extra in ([], ["--resume"]):
            assert explain(photos, out, *extra)[0] == 0
            assert (out / ".img1.search.pt").read_bytes() == checkpoint  # neither dropped nor continued
            assert not (out / "img1.json").exists()
    finally:
        claim.release()
    code, paid = explain(photos, out, "--resume")  # the claim is free again: this run continues the search
    assert code == 0 and paid == whole["records"][1]["queries"] - 1 - 16 - 8

    # a checkpoint beside complete outputs (a run stopped between writing them and deleting it, or a
    # rerun without --resume stopped mid-search): --resume skips the image and drops the checkpoint,
    # unless another run holds the image
    (out / ".img1.search.pt").write_bytes(checkpoint)
    claim = try_claim(out, "img1")
    assert explain(photos, out, "--resume") == (0, 0) and (out / ".img1.search.pt").exists()  # held: kept
    claim.release()
    assert explain(photos, out, "--resume") == (0, 0) and not (out / ".img1.search.pt").exists()
