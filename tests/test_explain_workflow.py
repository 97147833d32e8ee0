"""decam.workflows.explain without the command line: jobs and stems, resume, failures, callbacks, and
tracking that stops after the store's first failure."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from decam.config import load_config
from decam.errors import InputError
from decam.workflows.explain import ExplainBatch, ExplainOutcome, ExplainTracking, Failure, plan_jobs

TINY = ["model=tiny_models:tiny", "generations=2", "searcher.popsize=4"]


def test_stems_are_unique_in_order_and_the_embedded_photo_is_coffee():
    jobs = plan_jobs([Path("x/a.png"), Path("y/a.png"), None, "z/b.jpg"])
    assert [job.stem for job in jobs] == ["a", "a_2", "coffee", "b"]
    assert [job.name for job in jobs] == ["x/a.png", "y/a.png", "coffee", "z/b.jpg"]
    assert plan_jobs([Path("x/a.png"), Path("y/a.png")]) == jobs[:2]  # a rerun finds the same stems


def test_exit_code_of_an_outcome():
    bad = [Failure("a", 3, "a: bad"), Failure("b", 4, "b: nan")]
    assert ExplainOutcome(2).exit_code == 0
    assert ExplainOutcome(3, bad).exit_code == 1  # some images were written
    assert ExplainOutcome(2, bad).exit_code == 4  # none was: the worst code
    assert ExplainOutcome(2, tracking_error=type("Store", (InputError,), {"exit_code": 5})()).exit_code == 5


def test_batch_reports_through_callbacks_and_resume_skips_what_is_done(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((48, 48, 3), 120, dtype=np.uint8)).save(photos / "good.png")
    (photos / "bad.png").write_bytes(b"not a png")
    images = [photos / "bad.png", photos / "good.png"]
    out = tmp_path / "out"
    out.mkdir()
    cfg = load_config(None, TINY)
    done, failed, steps = [], [], []
    batch = ExplainBatch(cfg, images, out)
    assert batch.skipped == [] and batch.label == "2 images"
    outcome = batch.run(progress=lambda i, entry: steps.append(i), on_done=lambda job, exp: done.append(job.stem),
                        on_failure=lambda failure, error: failed.append((failure, type(error))))
    assert done == ["good"] and steps and set(steps) == {1}  # only the good image (index 1) was searched
    assert [(f.exit_code, e) for f, e in failed] == [(3, InputError)] and failed[0][0].error.startswith(str(images[0]))
    assert outcome.exit_code == 1 and outcome.failures == [f for f, _ in failed]
    with open(outcome.failures_file, newline="") as f:
        assert [row["image"] for row in csv.DictReader(f)] == [str(images[0])]

    again = ExplainBatch(cfg, images, out, resume=True)
    assert [job.stem for job in again.skipped] == ["good"] and [job.stem for job in again.pending] == ["bad"]
    assert again.label == str(images[0])


def test_tracking_warns_once_then_stops(tmp_path, monkeypatch):
    import decam.tracking
    from decam.tracking import TrackingError

    stores = []

    class DeadStore:
        def __init__(self, uri, experiment):
            stores.append(uri)
            raise TrackingError(f"tracking store {uri}: unreachable")

    monkeypatch.setattr(decam.tracking, "Tracker", DeadStore)
    monkeypatch.setattr(decam.tracking, "score_explanation", lambda explainer, exp: None)
    warnings = []
    tracking = ExplainTracking("http://nowhere", on_logged=lambda *a: warnings.append("logged"),
                               on_failed=warnings.append)
    assert tracking.log(None, None, "a.png") is None and not tracking.active
    assert tracking.log(None, None, "b.png") is None
    assert stores == ["http://nowhere"] and len(warnings) == 1 and "unreachable" in str(warnings[0])
