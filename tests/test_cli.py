"""The command line itself: help without torch, one-line usage errors, --debug, Ctrl-C, --ray's optional
address, sweep's --images list and shell completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from decam.cli import main
from decam.cli.explain import explain
from decam.errors import ConfigError

HEAVY = ("torch", "torchvision", "mlflow", "ray", "evotorch")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"], ["explain", "--help"]])
def test_help_does_not_import_torch(args):
    proc = run_python("import sys\nfrom decam.cli import main\ncode = main(%r)\n"
                      "print(code, sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (args, HEAVY))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stdout
    assert "Usage: decam" in proc.stdout


def test_python_m_decam_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "decam", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "explain" in proc.stdout and "sweep" in proc.stdout


@pytest.mark.parametrize("args, message", [
    ([], "Missing command"),
    (["explian"], "No such command 'explian'"),
    (["explain", "--outt", "d"], "No such option.*--outt"),
    (["explain", "--seed", "abc"], "'abc' is not a valid integer"),
    (["explain", "--target"], "requires an argument"),
    (["evaluate", "--quiet"], "Missing argument"),
    (["sweep"], "Missing argument 'STUDY'"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("decam: error: ") and re.search(message, err[0]), captured.err
    assert captured.out == ""


def test_debug_after_the_command_shows_the_traceback_of_a_config_error(tmp_path, capsys):
    assert main(["explain", "searcher.CR=1.5", "--debug", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("decam: error: searcher.CR=1.5")


def test_ctrl_c_exits_130_with_one_line(tmp_path, monkeypatch, capsys):
    from decam.workflows.explain import ExplainBatch

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ExplainBatch, "run", interrupted)
    assert main(["explain", "--out", str(tmp_path), "--quiet", "--generations", "1"]) == 130
    assert capsys.readouterr().err.strip() == "decam: interrupted (finished outputs are kept; --resume skips them)"


@pytest.mark.parametrize("args, items, ray", [
    (["a.jpg"], ("a.jpg",), None),
    (["a.jpg", "--ray"], ("a.jpg",), "local"),
    (["--ray", "--quiet", "a.jpg", "k=v"], ("a.jpg", "k=v"), "local"),
    (["--out", "d", "a.jpg", "--ray", "HEAD:6379", "k=v"], ("a.jpg", "k=v"), "HEAD:6379"),
])
def test_ray_takes_an_optional_address_and_arguments_go_anywhere(args, items, ray):
    ctx = explain.make_context("explain", list(args))
    assert ctx.params["items"] == items and ctx.params["ray"] == ray


def test_sweep_images_take_several_words_and_leave_the_overrides(tmp_path, monkeypatch):
    import decam.workflows.sweep

    seen = {}

    def load_study(path, overrides, images=None, limit=None, experiment=None):
        seen.update(path=path, overrides=overrides, images=images, limit=limit)
        raise ConfigError("stop here")

    monkeypatch.setattr(decam.workflows.sweep, "load_study", load_study)
    a, b = tmp_path / "a.jpg", tmp_path / "b"
    assert main(["sweep", "S.yaml", "generations=2", "--images", str(a), str(b), "grid.encoding.K=[2,4]",
                 "--limit", "1"]) == 2
    assert seen == {"path": "S.yaml", "overrides": ["generations=2", "grid.encoding.K=[2,4]"],
                    "images": [str(a), str(b)], "limit": 1}
    assert main(["sweep", "S.yaml", "generations=2"]) == 2
    assert seen["images"] is None and seen["overrides"] == ["generations=2"]


def test_shell_completion_comes_from_click():
    script = run_python("from decam.cli import main; main()", _DECAM_COMPLETE="bash_source")
    assert "_decam_completion" in script.stdout and "complete " in script.stdout
    words = run_python("from decam.cli import main; main()", _DECAM_COMPLETE="bash_complete",
                       COMP_WORDS="decam ev", COMP_CWORD="1")
    assert "plain,evaluate" in words.stdout.splitlines()
