"""The ``http(s)://`` client against a scripted server on 127.0.0.1: the protocol, requests in flight,
retries and their limits, cost limits, auth and TLS, and one-line errors with the documented exit
code for every way a server can fail."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from remote_servers import CLASSES, Answer, FakeServer, scores_answer, self_signed, tiny_scores

from decam.errors import ConfigError, ModelOutputError, ModelUnavailableError
from decam.models import ModelRunner, load_model
from decam.models.wire import encode

FAST = {"backoff": 0.01}


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def test_the_description_sets_up_the_model_and_scores_are_exact():
    with FakeServer() as server:
        model = load_model(server.url, options=FAST)
        x = images(6)
        out = model.forward(x)
    assert model.input_size == (48, 48) and model.class_names[3] == "class3" and model.module is None
    assert model.source == (server.url, None, FAST) and model.name == server.url
    assert torch.equal(out, tiny_scores(x))  # float32 on the wire: the server sees decam's exact pixels
    assert model.forward.counters.as_dict() == {"images": 6, "requests": 3, "retries": 0}  # GET + 2 POSTs


def test_a_batch_is_split_over_requests_in_flight_and_kept_in_order():
    with FakeServer() as server:
        model = load_model(server.url, options={"in_flight": 3, "max_batch": 3})
        x = images(10)
        out = model.forward(x)
    sizes = sorted(int(r.headers["content-length"]) for r in server.posts())
    assert len(server.posts()) == 4 and sizes[0] < sizes[-1]  # ceil(10 / 3) requests: 3, 3, 3, 1 images
    expected = torch.cat([tiny_scores(chunk) for chunk in x.split(3)])  # a matmul rounds by batch size
    assert torch.equal(out, expected)


def test_float16_on_the_wire_is_half_the_bytes():
    with FakeServer() as server:
        out = load_model(server.url, options={"dtype": "float16", "in_flight": 1}).forward(images(4))
        with FakeServer() as full:
            load_model(full.url, options={"in_flight": 1}).forward(images(4))
    assert int(server.posts()[0].headers["content-length"]) < 0.51 * int(full.posts()[0].headers["content-length"])
    assert torch.allclose(out, tiny_scores(images(4)), atol=1e-2)


def test_5xx_and_dropped_connections_are_retried_with_backoff():
    def flaky(request, i):
        if request.method == "POST" and i in (1, 2):
            return Answer(503, b"busy") if i == 1 else Answer(drop=True)
        return scores_answer(request)

    with FakeServer(flaky, keep_alive=False) as server:  # every request on a new connection
        model = load_model(server.url, options={**FAST, "in_flight": 1})
        out = model.forward(images(2))
    assert torch.equal(out, tiny_scores(images(2)))
    assert model.forward.counters.as_dict() == {"images": 2, "requests": 4, "retries": 2}


def test_an_answer_cut_short_by_a_dying_server_is_a_dropped_connection_and_retried():
    def dies_mid_answer(request, i):
        answer = scores_answer(request)
        answer.truncate = request.method == "POST" and i == 1  # headers announce the body, half of it comes
        return answer

    with FakeServer(dies_mid_answer, keep_alive=False) as server:
        model = load_model(server.url, options={**FAST, "in_flight": 1})
        out = model.forward(images(2))
    assert torch.equal(out, tiny_scores(images(2)))  # not "the server answered garbage"
    assert model.forward.counters.as_dict() == {"images": 2, "requests": 3, "retries": 1}


def test_a_kept_alive_connection_closed_while_idle_is_resent_at_once_not_retried():
    def idle_close(request, i):
        return Answer(drop=True) if request.method == "POST" and i == 1 else scores_answer(request)

    with FakeServer(idle_close) as server:  # the GET leaves a kept-alive connection that the server then drops
        model = load_model(server.url, options={"in_flight": 1, "backoff": 30.0})
        start = time.monotonic()
        out = model.forward(images(2))
    assert torch.equal(out, tiny_scores(images(2))) and time.monotonic() - start < 5  # no backoff
    assert model.forward.counters.as_dict() == {"images": 2, "requests": 3, "retries": 0}


def test_429_waits_what_retry_after_asks():
    def limited(request, i):
        if request.method == "POST" and i == 1:
            return Answer(429, b"", {"Retry-After": "0.3"})
        return scores_answer(request)

    with FakeServer(limited) as server:
        model = load_model(server.url, options={**FAST, "in_flight": 1})
        start = time.monotonic()
        model.forward(images(1))
    assert time.monotonic() - start >= 0.3 and model.forward.counters.retries == 1


def one_line_error(kind, call):
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_5xx_past_the_retries_is_a_one_line_model_error():
    def failing(request, i):
        if request.method == "GET":
            return scores_answer(request)
        return Answer(500, b'{"error": "model returned NaN or infinite logits"}', {"Content-Type": "application/json"})

    with FakeServer(failing) as server:
        model = load_model(server.url, options={**FAST, "retries": 2, "in_flight": 1})
        message = one_line_error(ModelOutputError, lambda: ModelRunner(model.forward)(images(2)))
    assert message == (f'{server.url}: server answered 500 Internal Server Error: {{"error": "model returned NaN or '
                       f'infinite logits"}} (3 attempts)')
    assert ModelOutputError.exit_code == 4 and len(server.posts()) == 3


def test_4xx_is_not_retried():
    def refusing(request, i):
        if request.method == "GET":
            return scores_answer(request)
        return Answer(400, b'{"error": "images hold NaN"}', {"Content-Type": "application/json"})

    with FakeServer(refusing) as server:
        model = load_model(server.url, options=FAST)
        message = one_line_error(ModelOutputError, lambda: model.forward(images(1)))
    assert "400 Bad Request" in message and "images hold NaN" in message and len(server.posts()) == 1


def test_when_one_request_of_a_batch_fails_the_others_stop_retrying():
    def split(request, i):
        if request.method == "GET":
            return scores_answer(request)
        return Answer(400, b"bad") if i == 1 else Answer(503, b"busy", delay=0.2)

    with FakeServer(split) as server:
        model = load_model(server.url, options={"in_flight": 2, "retries": 5, "backoff": 0.2})
        assert pytest.raises(ModelOutputError, model.forward, images(2)).match("400 Bad Request")
        time.sleep(1.0)  # what the other request would have retried by now
    assert len(server.posts()) <= 3 and not model.forward.down


@pytest.mark.parametrize("body, message", [
    (b"<html>oops</html>", "answered garbage: response is not a .npy array"),
    (encode(np.zeros((2, CLASSES), np.float32)), r"answered garbage: response holds float32 \(2, 10\) for 1 images"),
    (encode(np.full((1, CLASSES), np.nan, np.float32)), "answered garbage: response holds NaN or infinite scores"),
    (encode(np.zeros((1, 3, 4), np.float32)), "answered garbage"),
])
def test_garbage_answers_are_one_line_model_errors_without_retries(body, message):
    def garbage(request, i):
        return scores_answer(request) if request.method == "GET" else Answer(200, body)

    with FakeServer(garbage) as server:
        model = load_model(server.url, options=FAST)
        assert pytest.raises(ModelOutputError, model.forward, images(1)).match(message)
    assert len(server.posts()) == 1


def test_a_slow_server_times_out_within_the_bound():
    def slow(request, i):
        answer = scores_answer(request)
        answer.delay = 3.0 if request.method == "POST" else 0.0
        return answer

    with FakeServer(slow) as server:
        model = load_model(server.url, options={**FAST, "timeout": 0.3, "retries": 1})
        start = time.monotonic()
        message = one_line_error(ModelOutputError, lambda: model.forward(images(1)))
        elapsed = time.monotonic() - start
    assert message == f"{server.url}: no answer within timeout=0.3 s (2 attempts)"
    assert elapsed < 1.5


def test_an_unreachable_server_is_unavailable_at_load_and_a_dead_one_fails_fast():
    with FakeServer() as server:
        url = server.url
        model = load_model(url, options={**FAST, "retries": 2})
        model.forward(images(1))
    message = one_line_error(ModelOutputError, lambda: model.forward(images(1)))
    assert message == f"{url}: connection refused (3 attempts)"
    requests = model.forward.counters.requests
    assert "connection refused (1 attempt)" in one_line_error(ModelOutputError, lambda: model.forward(images(1)))
    assert model.forward.counters.requests == requests + 1  # known down: no more retries per batch
    message = one_line_error(ModelUnavailableError, lambda: load_model(url, options=FAST))
    assert message.startswith(f"{url}: cannot reach the model server: connection refused")
    assert ModelUnavailableError.exit_code == 2


def test_probabilities_from_the_server_become_log_probabilities():
    def probs(request, i):
        answer = scores_answer(request, lambda x: tiny_scores(x).softmax(-1))
        if request.method == "POST":
            answer.headers["X-Decam-Scores"] = "probabilities"
        return answer

    with FakeServer(probs) as server:
        out = load_model(server.url).forward(images(3))
    assert torch.allclose(out.softmax(-1), tiny_scores(images(3)).softmax(-1), atol=1e-5)


def test_max_queries_refuses_a_batch_before_sending_it():
    with FakeServer() as server:
        model = load_model(server.url, options={"max_queries": 10, "in_flight": 1})
        model.forward(images(8))
        message = one_line_error(ModelOutputError, lambda: model.forward(images(8)))
    assert message == f"{server.url}: model_options.max_queries=10 reached (8 images sent; this batch has 8)"
    assert len(server.posts()) == 1


def test_rate_limits_request_starts():
    with FakeServer() as server:
        model = load_model(server.url, options={"rate": 10.0, "in_flight": 4, "max_batch": 1})
        start = time.monotonic()
        model.forward(images(4))
    assert time.monotonic() - start >= 0.4  # GET + 4 POSTs at 10 per second


def test_the_token_comes_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "s3cret")
    with FakeServer() as server:
        load_model(server.url, options={"token_env": "MY_SERVICE_TOKEN"}).forward(images(1))
        load_model(server.url, options={"token_env": "MY_SERVICE_TOKEN", "auth_header": "X-API-Key",
                                        "auth_scheme": ""}).forward(images(1))
    assert [r.headers.get("authorization") for r in server.requests[:2]] == ["Bearer s3cret"] * 2
    assert server.requests[-1].headers["x-api-key"] == "s3cret"
    monkeypatch.delenv("MY_SERVICE_TOKEN")
    assert "is not set" in one_line_error(ConfigError, lambda: load_model(server.url,
                                                                          options={"token_env": "MY_SERVICE_TOKEN"}))
    assert "credentials do not belong in the URL" in one_line_error(
        ConfigError, lambda: load_model("http://me:pw@127.0.0.1:1/predict"))


def test_a_refused_token_is_a_setup_error():
    with FakeServer(lambda r, i: Answer(401, b"", {})) as server:
        message = one_line_error(ModelUnavailableError, lambda: load_model(server.url))
    assert "refused access (401 Unauthorized)" in message and "token_env" in message


def test_a_server_without_a_description_uses_the_options():
    def bare(request, i):
        return Answer(405) if request.method == "GET" else scores_answer(request)

    with FakeServer(bare) as server:
        default = load_model(server.url)
        sized = load_model(server.url, options={"input_size": [48, 48], "crop": 1.0, "labels": "imagenet"})
    assert default.input_size == (224, 224) and default.resize == 256 and default.class_names is None
    assert sized.input_size == (48, 48) and sized.resize == 48 and sized.class_names[0] == "tench"


def test_the_number_of_classes_must_not_change():
    def shifty(request, i):
        n = 10 if i < 2 else 11
        return scores_answer(request, lambda x: torch.zeros(x.shape[0], n))

    with FakeServer(shifty) as server:
        model = load_model(server.url, options={"in_flight": 1})
        model.forward(images(1))
        assert "answered 11 scores per image, earlier 10" in one_line_error(ModelOutputError,
                                                                           lambda: model.forward(images(1)))


@pytest.mark.parametrize("options, message", [
    ({"timeout": 0}, r"model_options.timeout=0.0 is out of range: expected \(0, 3600\]"),
    ({"in_flight": 0}, r"model_options.in_flight=0 is out of range"),
    ({"dtype": "uint8"}, r"model_options.dtype='uint8': expected one of float32, float16"),
    ({"retry": 3}, r"unknown key model_options.retry for model 'http://127.0.0.1:9/p'; valid keys: input_size"),
    ({"input_size": [0, 5]}, r"model_options.input_size=\[0, 5\]: expected \[height, width\]"),
])
def test_options_are_checked_before_any_connection(options, message):
    with pytest.raises(ConfigError, match=message):
        load_model("http://127.0.0.1:9/p", options=options)


def test_https_checks_the_certificate_unless_told(tmp_path):
    cert, key = self_signed(tmp_path)
    with FakeServer(tls=(cert, key)) as server:
        assert "TLS certificate not trusted" in one_line_error(ModelUnavailableError, lambda: load_model(server.url))
        trusted = load_model(server.url, options={"ca_bundle": str(cert)})
        unchecked = load_model(server.url, options={"verify": False})
        x = images(1)
        assert torch.equal(trusted.forward(x), tiny_scores(x)) and torch.equal(unchecked.forward(x), tiny_scores(x))
    assert "cannot read CA certificates" in one_line_error(
        ConfigError, lambda: load_model(server.url, options={"ca_bundle": str(tmp_path / "none.pem")}))
