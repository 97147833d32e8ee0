"""Several processes, one output folder or one tracking store: every image and every study child is
done once, no image's files are mixed from two runs, and both runs' failures stay listed."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from decam.cli import main
from decam.io.claims import FileLock, holder, lock_path, remove_stale_locks, try_claim
from decam.io.failures import FailureLog

TESTS = Path(__file__).parent
RUN = ["--generations", "6", "--popsize", "8", "batch_size=8"]  # batch 8: one search at a time


def env(delay: float = 0.0) -> dict:
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "TINY_DELAY": str(delay)}


def decam(*args: str, delay: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "decam", *args], env=env(delay), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


# --- claims -------------------------------------------------------------------------------------

def test_a_claim_is_exclusive_and_its_file_goes_with_it(tmp_path):
    first = try_claim(tmp_path, "img0")
    assert first is not None and lock_path(tmp_path, "img0").is_file()
    assert try_claim(tmp_path, "img0") is None  # another open file, even in this process, is another claimant
    assert holder(tmp_path, "img0") == f"pid {os.getpid()}"
    first.release()
    assert not lock_path(tmp_path, "img0").exists()
    again = try_claim(tmp_path, "img0")
    assert again is not None
    again.release()


def test_a_claim_dies_with_its_holder_even_by_kill_9(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from decam.io.claims import try_claim
        claim = try_claim({str(tmp_path)!r}, "img0")
        print("held" if claim else "busy", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert try_claim(tmp_path, "img0") is None
        assert holder(tmp_path, "img0") == f"pid {proc.pid}"
        assert remove_stale_locks(tmp_path) == []  # a live holder's file stays
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock_path(tmp_path, "img0").exists()  # kill -9 leaves the file, but not the lock
    assert remove_stale_locks(tmp_path) == [lock_path(tmp_path, "img0")]
    claim = try_claim(tmp_path, "img0")
    assert claim is not None
    claim.release()


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path):
    held = FileLock(tmp_path / ".x.lock")
    held.acquire()
    assert not FileLock(tmp_path / ".x.lock").acquire(timeout=0.2)
    held.release()
    waiter = FileLock(tmp_path / ".x.lock")
    assert waiter.acquire(timeout=1)
    waiter.release()


# --- failures.csv shared by runs ------------------------------------------------------------------

def rows(folder: Path) -> list[str]:
    path = folder / "failures.csv"
    return sorted(r["image"] for r in csv.DictReader(path.open())) if path.exists() else []


def test_failures_of_runs_sharing_a_folder_are_all_kept(tmp_path):
    a = FailureLog(tmp_path)
    a.open()
    a.failed("a.png", 3, "a.png: corrupt")
    b = FailureLog(tmp_path)
    b.open()  # a is still going: its row stays
    b.failed("b.png", 3, "b.png: corrupt")
    assert rows(tmp_path) == ["a.png", "b.png"]
    a.close()
    b.failed("c.png", 4, "c.png: model failed")
    b.succeeded("a.png")  # b explained a.png after all: it is no longer a failure
    b.close()
    assert rows(tmp_path) == ["b.png", "c.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failures.csv"]  # no lock files left
    with FailureLog(tmp_path) as c:  # a run starting alone: earlier runs' failures are history
        assert rows(tmp_path) == []
        c.failed("d.png", 3, "d.png: corrupt")
    assert rows(tmp_path) == ["d.png"]


# --- two explain processes, one --out ---------------------------------------------------------------

def reference(folder: Path, out: Path, seed: int) -> dict[str, np.ndarray]:
    assert main(["explain", str(folder), "--out", str(out), "--model", "tiny_models:tiny", *RUN,
                 f"--seed={seed}", "--quiet"]) == 0
    return {p.name[: -len(".saliency.npy")]: np.load(p) for p in out.glob("*.saliency.npy")}


@pytest.mark.slow
def test_two_explain_runs_on_one_out_split_the_images_and_keep_both_failure_lists(tmp_path):
    folder = photos(tmp_path / "photos", 6)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken_a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (bad / "broken_b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "out"
    common = ["--out", str(out), "--model", "tiny_models:slow", *RUN]
    first = decam("explain", str(folder), str(bad / "broken_a.png"), *common, "--seed=1", delay=0.08)
    second = decam("explain", str(folder), str(bad / "broken_b.png"), *common, "--seed=2", delay=0.08)
    (out1, err1), (out2, err2) = first.communicate(timeout=300), second.communicate(timeout=300)
    assert (first.returncode, second.returncode) == (1, 1), err1 + err2  # each: one bad file, the rest written

    def did(stdout: str) -> set[str]:
        return {Path(line.split(":")[0]).stem for line in stdout.splitlines() if "queries" in line}

    def left(stdout: str) -> set[str]:
        return {Path(line.split(":")[0]).stem for line in stdout.splitlines()
                if "another decam run in this folder" in line and line.endswith("skipped")}

    mine1, mine2 = did(out1), did(out2)
    everything = {f"img{i}" for i in range(6)}
    assert mine1 | mine2 == everything and not mine1 & mine2, (out1, out2)  # each image done once
    assert left(out1) == mine2 and left(out2) == mine1  # and the other run said it skipped it

    maps = {1: reference(folder, tmp_path / "ref1", 1), 2: reference(folder, tmp_path / "ref2", 2)}
    for stem in everything:
        record = json.loads((out / f"{stem}.json").read_text())
        seed = record["config"]["seed"]
        assert seed == (1 if stem in mine1 else 2)
        # the map beside the record is the map of the run that wrote the record: no mixed set
        assert np.allclose(np.load(out / f"{stem}.saliency.npy"), maps[seed][stem], atol=1e-5)
        assert not np.allclose(maps[1][stem], maps[2][stem], atol=1e-3)
    assert rows(out) == ["broken_a.png", "broken_b.png"] or \
        sorted(Path(r).name for r in rows(out)) == ["broken_a.png", "broken_b.png"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no claims or temporaries left


# --- two sweeps, one SQLite store -----------------------------------------------------------------

STUDY = """
name: twice
images: [{images}]
base:
  model: tiny_models:slow
  generations: 3
  batch_size: 16
  searcher: {{name: de, popsize: 8}}
grid:
  searcher.CR: [0.2, 0.9]
  encoding.K: [2, 4]
metrics: {{n_steps: 8}}
"""


@pytest.mark.slow
def test_the_same_study_twice_at_once_into_a_fresh_sqlite_store_runs_each_child_once(tmp_path):
    folder = photos(tmp_path / "photos", 2)
    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(images=", ".join(str(p) for p in sorted(folder.iterdir()))))
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"  # does not exist yet: both processes find an empty store
    procs = [decam("sweep", str(study), "--tracking-uri", uri, "--out", str(tmp_path / f"out{i}"), delay=0.05)
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    ran = [int(o[0].split("twice: ")[1].split(" runs")[0]) for o in outs]
    assert sum(ran) == 8, outs  # 2 x 2 configurations x 2 images, each run by one of the two

    con = sqlite3.connect(db)
    kind = con.execute("select t.value from experiment_tags t join experiments e on t.experiment_id = e.experiment_id "
                       "where e.name = 'twice' and t.key = 'mlflow.experimentKind'").fetchall()
    assert kind == [("custom_model_development",)]
    runs = con.execute("select r.run_uuid, r.status, "
                       "(select value from tags where run_uuid = r.run_uuid and key = 'decam.key'), "
                       "(select value from tags where run_uuid = r.run_uuid and key = 'mlflow.parentRunId') "
                       "from runs r where r.lifecycle_stage = 'active'").fetchall()
    parents = [r for r in runs if r[3] is None]
    children = [r for r in runs if r[3] is not None]
    assert len(parents) == 1 and parents[0][1] == "FINISHED"
    assert len(children) == 8 and len({r[2] for r in children}) == 8  # one run per child, none twice
    assert {r[1] for r in children} == {"FINISHED"} and {r[3] for r in children} == {parents[0][0]}
    assert not [p.name for p in db.parent.iterdir() if p.name.endswith(".lock")]


# --- the store under contention -------------------------------------------------------------------

def test_database_is_locked_is_retried_and_other_errors_are_not():
    from decam.tracking.store import is_locked, retry_locked

    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            try:
                raise sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError as e:
                raise RuntimeError("(sqlite3.OperationalError) database is locked [SQL: INSERT ...]") from e
        return "ok"

    assert retry_locked(flaky) == "ok" and len(calls) == 3
    assert is_locked(RuntimeError("x")) is False

    def broken():
        raise RuntimeError("no such table: runs")

    with pytest.raises(RuntimeError, match="no such table"):
        retry_locked(broken)
    with pytest.raises(RuntimeError, match="database is locked"):
        retry_locked(lambda: (_ for _ in ()).throw(RuntimeError("database is locked")), patience=0.2)
