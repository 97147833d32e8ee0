"""kill -9 in the middle of a run leaves only whole files; ``--resume`` skips finished images and
completes the rest, with maps bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from decam.cli import main

TESTS = Path(__file__).parent
IMAGES = 5
BUDGET = ["--generations", "6", "--popsize", "8", "batch_size=8", "--quiet"]  # batch 8: one image at a time
RUN = ["--model", "tiny_models:tiny", *BUDGET]
SLOW = ["--model", "tiny_models:slow", *BUDGET]  # the same network, sleeping TINY_DELAY s per forward call


def env(delay: float) -> dict:
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "TINY_DELAY": str(delay)}


def decam(*args: str, delay: float = 0.0, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "decam", "explain", *args], env=env(delay),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def check_whole(out: Path) -> None:
    """Every visible file reads completely; every image with a JSON record has its maps."""
    for path in out.iterdir():
        if path.name.startswith("."):
            continue
        if path.suffix == ".npy":
            assert np.load(path).shape == (48, 48)
        elif path.suffix == ".png":
            Image.open(path).load()
        elif path.suffix == ".json":
            record = json.loads(path.read_text())
            stem = path.name[: -len(".json")]
            assert record["image"].endswith(f"{stem}.png")
            assert (out / f"{stem}.saliency.npy").is_file() and (out / f"{stem}.saliency.png").is_file()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(IMAGES):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.mark.slow
def test_kill_9_then_resume(photos, tmp_path):
    out = tmp_path / "out"
    proc = decam(str(photos), "--out", str(out), *SLOW, delay=0.08)  # about 0.7 s per image
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not finish two images in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    done = sorted(p.name for p in out.glob("*.json"))
    assert 2 <= len(done) < IMAGES, done  # killed mid-run, not after the last image
    check_whole(out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.split(".")[0] + ".json" in done}

    assert main(["explain", str(photos), "--out", str(out), *RUN, "--resume"]) == 0
    assert sorted(p.name for p in out.glob("*.json")) == [f"img{i}.json" for i in range(IMAGES)]
    assert not list(out.glob(".*")), "temporary files survived the resumed run"
    check_whole(out)
    assert {name: (out / name).stat().st_mtime_ns for name in before} == before  # finished images untouched

    # the interrupted-and-resumed maps are bit-identical to an uninterrupted run's
    fresh = tmp_path / "fresh"
    assert main(["explain", str(photos), "--out", str(fresh), *RUN]) == 0
    for i in range(IMAGES):
        a, b = (np.load(d / f"img{i}.saliency.npy") for d in (out, fresh))
        assert np.array_equal(a, b), f"img{i} differs after resume"


def test_resume_only_skips_complete_outputs(photos, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(photos), "--out", str(out), *RUN]
    assert main(["explain", *args]) == 0
    (out / "img1.json").unlink()  # as if killed before its record was written
    (out / "img3.saliency.npy").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["explain", *args[:-1], "--resume"]) == 0  # not --quiet: it says what it skipped
    captured = capsys.readouterr().out
    skipped = sorted(Path(line.split(":")[0]).name for line in captured.splitlines() if "skipped" in line)
    assert skipped == ["img0.png", "img2.png", "img4.png"]
    for i in range(IMAGES):
        assert (out / f"img{i}.json").is_file() and (out / f"img{i}.saliency.npy").is_file()
        redone = (out / f"img{i}.saliency.png").stat().st_mtime_ns != stamps[f"img{i}.saliency.png"]
        assert redone == (i in (1, 3))


def test_without_resume_everything_is_redone(photos, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(photos), "--out", str(out), *RUN]
    assert main(["explain", *args]) == 0
    first = (out / "img0.json").stat().st_mtime_ns
    time.sleep(0.01)
    assert main(["explain", *args]) == 0
    assert (out / "img0.json").stat().st_mtime_ns != first
    assert "skipped" not in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_killed_writer_leaves_the_old_file_and_its_temporary_is_cleaned(tmp_path):
    from decam.io import atomic_open, remove_stale_temporaries

    target = tmp_path / "map.npy"
    np.save(target, np.arange(3))
    pid = os.fork()
    if pid == 0:  # the child dies by kill -9 in the middle of replacing the file
        with atomic_open(target) as f:
            f.write(b"half a file")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert np.array_equal(np.load(target), np.arange(3))  # the old file is whole
    temporaries = list(tmp_path.glob(".*.tmp"))
    assert len(temporaries) == 1
    assert remove_stale_temporaries(tmp_path) == temporaries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.npy"]
