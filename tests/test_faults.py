"""Faults a long run meets: a full disk, a read-only output folder, SIGTERM from a scheduler, and
outputs damaged after they were written. Each ends in one line and a documented exit code, with
whole files only."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from decam.cli import main

TESTS = Path(__file__).parent
RUN = ["--model", "tiny_models:tiny", "--generations", "3", "--popsize", "8", "batch_size=8", "--quiet"]


def photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def whole_sets(out: Path) -> list[str]:
    """Stems with a complete, readable set of outputs; fails on any partial or unreadable file."""
    stems = sorted(p.name[: -len(".json")] for p in out.glob("*.json"))
    for stem in stems:
        assert np.load(out / f"{stem}.saliency.npy").shape == (48, 48)
        for suffix in (".saliency.png", ".overlay.png"):
            Image.open(out / f"{stem}{suffix}").load()
    assert sorted({p.name.split(".")[0] for p in out.iterdir() if not p.name.startswith(".")} - {"failures"}) == stems
    return stems


# --- a full disk ----------------------------------------------------------------------------------

def no_space_after(monkeypatch, files: int) -> None:
    """Let ``files`` more files be synced to disk, then fail every write like a full disk."""
    real = os.fsync
    left = [files]

    def fsync(fd: int) -> None:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left[0] -= 1
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_stops_the_run_with_exit_6_and_whole_files(tmp_path, monkeypatch, capsys):
    folder = photos(tmp_path / "photos", 4)
    out = tmp_path / "out"
    no_space_after(monkeypatch, 1 + 4)  # the --out probe, then the 4 files of the first image
    rc = main(["explain", str(folder), "--out", str(out), *RUN])
    err = capsys.readouterr().err
    assert rc == 6, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("decam: error: ") and "No space left on device" in lines[0]
    assert "stopped after 1 of 4 images" in lines[0] and "--resume" in lines[0]
    assert whole_sets(out) == ["img0"]  # nothing of the image in flight, nothing after it
    # no temporaries, no claims; the search whose outputs did not fit kept its checkpoint (never
    # synced to the disk, so the fsyncs that failed were the outputs')
    assert hidden(out) == [".img1.search.pt"]

    monkeypatch.undo()  # space freed
    assert main(["explain", str(folder), "--out", str(out), *RUN, "--resume"]) == 0
    assert whole_sets(out) == [f"img{i}" for i in range(4)] and hidden(out) == []


def test_a_full_disk_in_evaluate_is_one_line_with_exit_6(tmp_path, monkeypatch, capsys):
    from decam.workflows.evaluate import Evaluation

    def full(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.out_dir / "results.csv"))

    monkeypatch.setattr(Evaluation, "write_tables", full)
    folder = photos(tmp_path / "photos", 1)
    rc = main(["evaluate", str(folder), "--methods", "random", "--out", str(tmp_path / "eval"), *RUN])
    err = capsys.readouterr().err
    assert rc == 6 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == \
        f"decam: error: {tmp_path / 'eval' / 'results.csv'}: cannot write (No space left on device); finished outputs are whole"


SMALL_FS = os.environ.get("DECAM_TEST_SMALL_FS")


@pytest.mark.slow
@pytest.mark.skipif(not SMALL_FS, reason="set DECAM_TEST_SMALL_FS to a folder on a small, empty filesystem")
def test_a_real_small_filesystem_fills_up(tmp_path):  # pragma: no cover - needs a mount
    folder = photos(tmp_path / "photos", 40)
    out = Path(tempfile.mkdtemp(dir=SMALL_FS))
    proc = subprocess.run([sys.executable, "-m", "decam", "explain", str(folder), "--out", str(out), *RUN],
                          env={**os.environ, "PYTHONPATH": str(TESTS)}, capture_output=True, text=True)
    assert proc.returncode == 6, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    assert 0 < len(whole_sets(out)) < 40
    assert all(name.endswith(".search.pt") for name in hidden(out))  # at most the checkpoints of the search in flight


# --- a read-only output folder -----------------------------------------------------------------------

def read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` refuse new files as a read-only mount does (root ignores permission bits)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


STUDY = """
name: ro
images: [{image}]
base: {{model: tiny_models:broken_factory, generations: 2, searcher: {{name: de, popsize: 8}}}}
grid: {{searcher.CR: [0.2]}}
"""


@pytest.mark.parametrize("command", ["explain", "evaluate", "sweep"])
def test_a_read_only_out_is_exit_2_before_any_model_work(command, tmp_path, monkeypatch, capsys):
    photos(tmp_path / "photos", 1)
    out = tmp_path / "out"
    out.mkdir()
    read_only(monkeypatch, out)
    model = ["--model", "tiny_models:broken_factory"]  # loading it fails: the check must come first
    if command == "sweep":
        study = tmp_path / "study.yaml"
        study.write_text(STUDY.format(image=tmp_path / "photos" / "img0.png"))
        args = ["sweep", str(study), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--out", str(out)]
    else:
        args = [command, str(tmp_path / "photos"), "--out", str(out), *model, "--quiet"]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.strip() == f"decam: error: --out {out}: output folder cannot take files (Read-only file system)"
    assert list(out.iterdir()) == [] and not (tmp_path / "mlflow.db").exists()  # no store created either


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission_is_exit_2(tmp_path, capsys):  # pragma: no cover - not as root
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    assert main(["explain", "--out", str(out), *RUN]) == 2
    assert "output folder is not writable" in capsys.readouterr().err


# --- outputs damaged after the fact -----------------------------------------------------------------

def test_resume_redoes_truncated_or_damaged_outputs_and_says_so(tmp_path, capsys):
    folder = photos(tmp_path / "photos", 4)
    out = tmp_path / "out"
    args = ["explain", str(folder), "--out", str(out), *RUN[:-1]]
    assert main(args) == 0
    npy = (out / "img0.saliency.npy").read_bytes()
    (out / "img0.saliency.npy").write_bytes(npy[: len(npy) // 2])  # a copy cut short
    png = (out / "img1.overlay.png").read_bytes()
    (out / "img1.overlay.png").write_bytes(png[:100])
    (out / "img2.json").write_text('{"image": "img2.p')  # a record cut short
    intact = (out / "img3.saliency.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "img0.png: outputs in" in said and "(img0.saliency.npy is truncated or damaged), redone" in said
    assert "(img1.overlay.png is truncated or damaged), redone" in said
    assert "(img2.json is damaged), redone" in said
    assert "img3.png: outputs complete, skipped (--resume)" in said
    assert whole_sets(out) == [f"img{i}" for i in range(4)]
    assert json.loads((out / "img2.json").read_text())["image"].endswith("img2.png")
    assert (out / "img3.saliency.npy").stat().st_mtime_ns == intact


# --- SIGTERM ----------------------------------------------------------------------------------------

def env(delay: float) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            "TINY_DELAY": str(delay)}


def start(*args: str, delay: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "decam", *args], env=env(delay), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not get that far in time"
        time.sleep(0.05)


def terminate(proc: subprocess.Popen) -> tuple[float, str]:
    """SIGTERM; seconds until decam said it stopped (the interpreter's own exit comes after), and stderr."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("decam: terminated"):
            break
    took = time.monotonic() - sent
    _, rest = proc.communicate(timeout=60)
    return took, "".join(lines) + rest


def statuses(db: Path) -> list[str]:
    return [s for (s,) in sqlite3.connect(db).execute("select status from runs where lifecycle_stage = 'active'")]


@pytest.mark.slow
def test_sigterm_stops_explain_like_ctrl_c_with_exit_143(tmp_path):
    folder = photos(tmp_path / "photos", 4)
    out, db = tmp_path / "out", tmp_path / "mlflow.db"
    # two searches share each model batch (worker threads); each group sleeps >= 300 x 0.02 s in the model
    proc = start("explain", str(folder), "--out", str(out), "--model", "tiny_models:slow", "--generations", "300",
                 "--popsize", "8", "batch_size=16", "--quiet", "--tracking-uri", f"sqlite:///{db}", delay=0.02)
    wait_for(proc, lambda: len(list(out.glob("*.json"))) >= 2 and len(statuses(db) if db.exists() else []) >= 2)
    took, err = terminate(proc)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == \
        "decam: terminated by SIGTERM (finished outputs are kept; --resume skips them)"
    assert took < 4, f"{took:.1f} s: the searches in flight did not stop"  # the next group needs >= 6 s
    assert whole_sets(out) == ["img0", "img1"]
    assert set(hidden(out)) <= {".img2.search.pt", ".img3.search.pt"}  # the searches in flight, to --resume
    assert set(statuses(db)) <= {"FINISHED", "KILLED"}


@pytest.mark.slow
def test_sigterm_stops_evaluate_and_sweep_with_exit_143_and_a_killed_parent(tmp_path):
    folder = photos(tmp_path / "photos", 3)
    out = tmp_path / "eval"
    proc = start("evaluate", str(folder), "--methods", "decam,random", "--out", str(out), "--model",
                 "tiny_models:slow", "--generations", "20", "--popsize", "8", "--quiet", delay=0.05)
    wait_for(proc, lambda: (out / "results.csv").exists())
    _, err = terminate(proc)
    assert proc.returncode == 143, err
    assert "decam: terminated by SIGTERM" in err and "Traceback" not in err
    assert (out / "results.csv").read_text().count("\n") >= 3  # header + both methods of the first image
    assert not list(out.rglob(".*"))

    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: term
images: [{folder}]
base: {{model: tiny_models:slow, generations: 20, batch_size: 8, searcher: {{name: de, popsize: 8}}}}
grid: {{searcher.CR: [0.2, 0.9]}}
metrics: {{n_steps: 8}}
""")
    db, sweep_out = tmp_path / "mlflow.db", tmp_path / "sweep"
    proc = start("sweep", str(study), "--tracking-uri", f"sqlite:///{db}", "--out", str(sweep_out), "--quiet",
                 delay=0.05)
    wait_for(proc, lambda: sweep_out.exists() and any(p.is_dir() and p.name != "summary" for p in sweep_out.iterdir()))
    _, err = terminate(proc)
    assert proc.returncode == 143, err
    con = sqlite3.connect(db)
    parent = con.execute("select status from runs where run_uuid not in "
                         "(select run_uuid from tags where key = 'mlflow.parentRunId')").fetchall()
    assert parent == [("KILLED",)]
    assert "RUNNING" not in statuses(db)
