"""``decam serve`` for real, on 127.0.0.1, and decam searching through it: the same map as in-process,
and for a server killed mid-search, a slow one and one that answers garbage, one error line, exit
code 4 and nothing half-written; a search whose server was killed continues with ``--resume``."""

from __future__ import annotations

import csv
import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from remote_servers import Answer, DecamServe, FakeServer, scores_answer

from decam.cli import main
from decam.models import FastForward, load_model
from decam.models.wire import decode, encode, encode_images
from decam.tracking.records import explanation_metrics

RUN = ["--generations", "6", "--popsize", "8", "batch_size=8", "--quiet"]
FAST_RETRIES = ["model_options.backoff=0.05"]


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request(method, parts.path, body=body, headers={"Content-Type": "application/x-npy"})
    response = conn.getresponse()
    out = response.status, response.read()
    conn.close()
    return out


def error_lines(stderr: str, out: Path) -> list[str]:
    """The error lines of a one-image run, without the run's closing summary (which names failures.csv)."""
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"decam: 1 of 1 images failed, listed in {out / 'failures.csv'}", stderr
    return lines[:-1]


def assert_nothing_half_written(out: Path, checkpoint: bool | None = False) -> None:
    """No map, overlay or record of a failed image, no temporary files; failures.csv whole. The
    search's checkpoint ``.coffee.search.pt`` is there if ``checkpoint`` (None: either way)."""
    names = sorted(p.name for p in out.iterdir())
    if checkpoint or (checkpoint is None and ".coffee.search.pt" in names):
        names.remove(".coffee.search.pt")
    assert names == ["failures.csv"], names
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert rows and all(row["exit_code"] == "4" for row in rows)


def search_until_killed(server: DecamServe, args: list[str], posts: int) -> int:
    """``decam ARGS`` in a thread; ``server`` SIGKILLed once it has had ``posts`` requests; the exit code."""
    result = {}
    search = threading.Thread(target=lambda: result.update(code=main(args)))
    search.start()
    server.wait_for_posts(posts)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    search.join(timeout=120)
    assert not search.is_alive()
    return result["code"]


@pytest.fixture(scope="module")
def tiny_server():
    with DecamServe("tiny_models:tiny", "--quiet") as server:
        yield server


@pytest.mark.slow
def test_the_server_describes_scores_and_refuses_bad_requests(tiny_server):
    status, body = post(tiny_server.url, b"", "GET")
    info = json.loads(body)
    assert status == 200 and info["input_size"] == [48, 48] and info["classes"] == 10
    assert info["class_names"][0] == "class0" and info["protocol"] == "decam-npy/1"
    x = torch.rand(5, 3, 48, 48)
    status, body = post(tiny_server.url, encode_images(x))
    expected = FastForward(load_model("tiny_models:tiny"), "cpu", "auto")(x)  # as the server runs it
    assert status == 200 and torch.equal(torch.from_numpy(decode(body).copy()), expected)
    for bad, code, message in [
        (b"<html/>", 400, "request body is not a .npy array"),
        (encode(np.zeros((2, 4, 8, 8), np.float32)), 400, r"expected float images (B, 3, H, W)"),
        (encode(np.full((1, 3, 48, 48), np.nan, np.float32)), 400, "NaN or infinite"),
        (encode(np.zeros((257, 3, 48, 48), np.float32)), 413, "at most 256"),
    ]:
        status, body = post(tiny_server.url, bad)
        assert status == code and message in json.loads(body)["error"], body


@pytest.mark.slow
def test_a_search_over_http_gives_the_in_process_map_and_counts_its_requests(tiny_server, tmp_path, capsys):
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["explain", "--model", "tiny_models:tiny", *RUN, "--out", str(local)]) == 0
    assert main(["explain", "--model", tiny_server.url, "model_options.in_flight=1", *RUN, "--out", str(remote)]) == 0
    assert capsys.readouterr().err == ""
    assert np.array_equal(np.load(local / "coffee.saliency.npy"), np.load(remote / "coffee.saliency.npy"))
    record = json.loads((remote / "coffee.json").read_text())
    assert record["remote"] == {"images": record["queries"], "requests": 1 + 7, "retries": 0}  # unmasked + 7 batches
    assert "remote" not in json.loads((local / "coffee.json").read_text())


@pytest.mark.slow
def test_a_server_killed_mid_search_is_one_line_exit_4_and_nothing_half_written(tmp_path, capsys):
    out = tmp_path / "out"
    with DecamServe("tiny_models:slow", TINY_DELAY="0.2") as server:  # logs every request
        args = ["explain", "--model", server.url, "--generations", "50", "--popsize", "8", "batch_size=8",
                "--quiet", "--out", str(out), *FAST_RETRIES]
        code = search_until_killed(server, args, posts=4)  # the unmasked image, then the search's batches
    assert code == 4
    assert error_lines(capsys.readouterr().err, out) == [
        f"decam: error: coffee: {server.url}: connection refused (4 attempts)"]
    assert_nothing_half_written(out, checkpoint=None)  # the search may have finished a generation


def test_a_search_whose_server_was_killed_resumes_against_a_fresh_server(tmp_path, capsys):
    """The server dies mid-search: the client fails (one line, exit 4, no outputs, the search's
    checkpoint kept); a fresh server at the same address and ``--resume`` finish the search with the
    uninterrupted map, sending the server only the generations left."""
    local, out = tmp_path / "local", tmp_path / "out"
    run = ["--generations", "20", "--popsize", "8", "batch_size=8", "--quiet"]
    assert main(["explain", "--model", "tiny_models:tiny", *run, "--out", str(local)]) == 0
    whole = json.loads((local / "coffee.json").read_text())
    run += ["model_options.in_flight=1", *FAST_RETRIES]  # one request per batch of 8, as in-process
    with DecamServe("tiny_models:slow", TINY_DELAY="0.1") as server:  # logs every request
        args = ["explain", "--model", server.url, *run, "--out", str(out)]
        # the unmasked image, generation 1 (2 batches), generation 2: 1 saved at least
        code = search_until_killed(server, args, posts=4)
    assert code == 4
    assert error_lines(capsys.readouterr().err, out) == [
        f"decam: error: coffee: {server.url}: connection refused (4 attempts)"]
    assert_nothing_half_written(out, checkpoint=True)
    saved = torch.load(out / ".coffee.search.pt", weights_only=True)
    assert 1 <= len(saved["history"]) < 20

    with DecamServe("tiny_models:slow", "--quiet", port=urlsplit(server.url).port, TINY_DELAY="0") as fresh:
        assert fresh.url == server.url  # the same address, so the same config: the checkpoint is this search's
        assert main([*args, "--resume"]) == 0
        fresh.proc.kill()  # done with it: no need to wait for a graceful stop
        fresh.proc.wait()
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in out.iterdir()) == [  # failures.csv and the checkpoint are gone
        "coffee.json", "coffee.overlay.png", "coffee.saliency.npy", "coffee.saliency.png"]
    assert np.array_equal(np.load(out / "coffee.saliency.npy"), np.load(local / "coffee.saliency.npy"))
    record = json.loads((out / "coffee.json").read_text())
    assert record["queries"] == whole["queries"] and record["history"] == whole["history"]
    assert record["remote"]["images"] == whole["queries"] - 1 - saved["queries"]  # no generation paid twice


@pytest.mark.slow
def test_a_slow_server_times_out_in_bounded_time(tmp_path, capsys):
    with DecamServe("tiny_models:slow", "--quiet", TINY_DELAY="1") as server:
        out = tmp_path / "out"
        start = time.monotonic()
        code = main(["explain", "--model", server.url, *RUN, "--out", str(out), "model_options.timeout=0.3",
                     "model_options.retries=1", *FAST_RETRIES])
        elapsed = time.monotonic() - start
    assert code == 4 and elapsed < 30
    assert error_lines(capsys.readouterr().err, out) == [
        f"decam: error: coffee: {server.url}: no answer within timeout=0.3 s (2 attempts)"]
    assert_nothing_half_written(out)


@pytest.mark.slow
def test_a_model_that_fails_behind_the_server_is_exit_4_with_the_servers_reason(tmp_path, capsys):
    with DecamServe("tiny_models:nan_when_masked", "--quiet") as server:
        out = tmp_path / "out"
        code = main(["explain", "--model", server.url, *RUN, "--out", str(out), "model_options.retries=1",
                     *FAST_RETRIES])
    assert code == 4
    (line,) = error_lines(capsys.readouterr().err, out)
    assert line.startswith(f"decam: error: coffee: {server.url}: server answered 500 Internal Server Error: ")
    assert "model returned NaN or infinite logits" in line and line.endswith("(2 attempts)")
    assert_nothing_half_written(out)


def test_a_server_answering_garbage_is_exit_4_and_nothing_half_written(tmp_path, capsys):
    def garbage(request, i):
        return scores_answer(request) if request.method == "GET" else Answer(200, b"<html>hello</html>")

    with FakeServer(garbage) as fake:
        code = main(["explain", "--model", fake.url, *RUN, "--out", str(tmp_path)])
    err = error_lines(capsys.readouterr().err, tmp_path)
    assert code == 4 and err == [f"decam: error: coffee: {fake.url}: the server answered garbage: response is not "
                                 "a .npy array (starts with '<html>hello</html>')"]
    assert_nothing_half_written(tmp_path)


def test_a_4xx_is_exit_4_without_retries(tmp_path, capsys):
    def forbidden(request, i):
        return scores_answer(request) if request.method == "GET" else Answer(404, b"no such model")

    with FakeServer(forbidden) as fake:
        assert main(["explain", "--model", fake.url, *RUN, "--out", str(tmp_path)]) == 4
    assert error_lines(capsys.readouterr().err, tmp_path)[0].endswith("server answered 404 Not Found (1 attempt)")
    assert len(fake.posts()) == 1


def test_counts_reach_the_json_and_the_mlflow_metrics(tmp_path):
    def flaky(request, i):
        return Answer(503) if request.method == "POST" and i == 2 else scores_answer(request)

    with FakeServer(flaky) as fake:
        assert main(["explain", "--model", fake.url, *RUN, "--out", str(tmp_path), *FAST_RETRIES]) == 0
    record = json.loads((tmp_path / "coffee.json").read_text())
    assert record["remote"]["retries"] == 1 and record["remote"]["images"] == record["queries"]
    assert record["remote"]["requests"] == len(fake.posts()) > 7

    class Exp:
        queries, seconds, remote = 57, 1.5, record["remote"]

    metrics = explanation_metrics(Exp())
    assert metrics["remote_retries"] == 1.0 and metrics["remote_requests"] == float(len(fake.posts()))


def test_serve_refuses_a_broken_model_and_a_taken_port(capsys):
    assert main(["serve", "tiny_models:nan", "--port", "0"]) == 4
    assert capsys.readouterr().err.strip() == "decam: error: model returned NaN or infinite logits"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "tiny_models:tiny", "--port", str(port)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"decam: error: cannot listen on 127.0.0.1:{port}")
