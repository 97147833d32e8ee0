"""``--model http://HOST:PORT/PATH`` (or https): a black box behind decam's HTTP protocol (decam.models.wire).

A batch is split into requests kept in flight together (``in_flight``, at most ``max_batch`` images
each); every request has a deadline (``timeout``), failed ones are retried with exponential backoff
on connection errors, timeouts, 429 and 5xx, and ``max_queries`` / ``rate`` bound the cost. Any
failure that the retries do not mend is one ModelOutputError line (exit code 4).
"""

from __future__ import annotations

import json
import math
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Annotated, Any, Literal, Optional
from urllib.parse import urlsplit

import torch

from decam.errors import ConfigError, ModelOutputError, ModelUnavailableError
from decam.models.http_client import (RETRY_STATUSES, Counters, Endpoint, RateLimit, Reply, RequestFailed,
                                      retry_after, with_retries)
from decam.models.loaded import LoadedModel
from decam.models.remote import DEFAULT_SIDE, class_names, input_size, resize_for
from decam.models.wire import CONTENT_TYPE, SCORES_HEADER, WireError, as_logits, decode_scores, encode_images
from decam.registry import Range

DEFAULT_MAX_BATCH = 64


class HttpForward:
    """Pixel-space batch → logits, scored by the server at ``url``; thread-safe.

    ``counters`` holds the images scored (the cost), the HTTP requests sent and the retries among them.
    """

    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 in_flight: int = 2, max_batch: int = DEFAULT_MAX_BATCH, max_queries: int | None = None,
                 rate: float | None = None, dtype: str = "float32", scores: str = "auto",
                 headers: dict[str, str] | None = None, verify: bool = True, ca_bundle: str | None = None) -> None:
        self.url = url
        self.counters, self.limit = Counters(), RateLimit(rate)
        self.endpoint = Endpoint(url, timeout=timeout, verify=verify, ca_bundle=ca_bundle, headers=headers,
                                 on_resend=lambda: self.counters.add(requests=1))
        self.retries, self.backoff, self.in_flight, self.max_batch = retries, backoff, in_flight, max_batch
        self.max_queries, self.dtype, self.scores = max_queries, dtype, scores
        self.classes: int | None = None
        self.down = False  # the last request found no server: later batches try once, without retries
        self._sent = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        """The server's description of the model (``GET``), {} when it has none; ModelUnavailableError
        (exit code 2) when the server cannot be reached or refuses access."""
        def attempt() -> Reply:
            reply = self.endpoint.request("GET", headers={"Accept": "application/json"})
            if reply.status in RETRY_STATUSES:
                raise RequestFailed(f"server answered {reply.message()}", True, retry_after(reply), reply)
            return reply

        try:
            reply = with_retries(attempt, retries=self.retries, backoff=self.backoff, counters=self.counters,
                                 limit=self.limit)
        except RequestFailed as e:
            what = "cannot reach the model server" if e.reply is None else "the model server failed"
            raise ModelUnavailableError(f"{self.url}: {what}: {e} ({_attempts(e)})") from None
        if reply.status in (401, 403):
            raise ModelUnavailableError(f"{self.url}: the server refused access ({reply.message()}); "
                                        "model_options.token_env names the variable holding the token")
        if reply.status != 200:  # 404, 405: a server with no description; the POSTs will tell
            return {}
        try:
            info = json.loads(reply.body)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        self._reserve(n)
        pieces = max(math.ceil(n / self.max_batch), min(self.in_flight, n))
        size = math.ceil(n / pieces)
        chunks = list(x.split(size))
        if len(chunks) == 1:
            return self._score(chunks[0])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="decam-http")
        abandoned, futures = threading.Event(), []
        try:
            for chunk in chunks:  # encoded here, each sent as soon as it is: this thread's heap stays warm
                futures.append(self._pool.submit(self._send, encode_images(chunk, self.dtype), chunk.shape[0],
                                                 abandoned))
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)  # the first failure ends the batch at once
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                raise failed.exception()
            return torch.cat([f.result() for f in futures])
        finally:
            abandoned.set()  # after a failure the other requests stop retrying (a no-op after success)
            for f in futures:
                f.cancel()

    def _reserve(self, n: int) -> None:
        """Count ``n`` images against ``max_queries`` before sending any of them."""
        with self._lock:
            if self.max_queries is not None and self._sent + n > self.max_queries:
                raise ModelOutputError(f"{self.url}: model_options.max_queries={self.max_queries} reached "
                                       f"({self._sent} images sent; this batch has {n})")
            self._sent += n

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return self._send(encode_images(x, self.dtype), x.shape[0])

    def _send(self, body: bytearray, n: int, abandoned: threading.Event | None = None) -> torch.Tensor:
        """Scores of the ``n`` images in ``body``, with retries; ModelOutputError when they fail for good."""

        def attempt() -> Reply:
            reply = self.endpoint.request("POST", body, {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})
            if reply.status != 200:
                raise RequestFailed(f"server answered {reply.message()}", reply.status in RETRY_STATUSES,
                                    retry_after(reply), reply)
            return reply

        try:
            reply = with_retries(attempt, retries=0 if self.down else self.retries, backoff=self.backoff,
                                 counters=self.counters, limit=self.limit, abandoned=abandoned)
        except RequestFailed as e:
            if not e.abandoned:
                self.down = e.reply is None
            raise ModelOutputError(f"{self.url}: {e} ({_attempts(e)})") from None
        self.down = False
        kind = reply.headers.get(SCORES_HEADER.lower(), "logits") if self.scores == "auto" else self.scores
        try:
            logits = as_logits(decode_scores(reply.body, n), kind)
        except WireError as e:
            raise ModelOutputError(f"{self.url}: the server answered garbage: {e}") from None
        with self._lock:
            self.classes = self.classes or logits.shape[1]
            if logits.shape[1] != self.classes:
                raise ModelOutputError(f"{self.url}: the server answered {logits.shape[1]} scores per image, "
                                       f"earlier {self.classes}")
        self.counters.add(images=n)
        return logits

    def close(self) -> None:
        """Stop the request threads; this thread's connection closes too."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.endpoint.close()


def _attempts(e: RequestFailed) -> str:
    return f"{e.attempts} attempt{'s' if e.attempts != 1 else ''}"


def http_model(
    url: str,
    *,
    input_size: Optional[list[int]] = None,
    crop: Annotated[Optional[float], Range(0.0, 1.0, low_open=True)] = None,
    labels: Optional[str] = None,
    scores: Literal["auto", "logits", "probabilities"] = "auto",
    dtype: Literal["float32", "float16"] = "float32",
    timeout: Annotated[float, Range(0.0, 3600.0, low_open=True)] = 30.0,
    retries: Annotated[int, Range(0, 100)] = 3,
    backoff: Annotated[float, Range(0.0, 60.0)] = 0.5,
    in_flight: Annotated[int, Range(1, 64)] = 2,
    max_batch: Annotated[Optional[int], Range(1, None)] = None,
    max_queries: Annotated[Optional[int], Range(1, None)] = None,
    rate: Annotated[Optional[float], Range(0.0, None, low_open=True)] = None,
    token_env: Optional[str] = None,
    auth_header: str = "Authorization",
    auth_scheme: str = "Bearer",
    verify: bool = True,
    ca_bundle: Optional[str] = None,
) -> LoadedModel:
    """A model served over HTTP with decam's protocol (``decam serve`` or your own server).

    Input size, crop, class names and normalization come from the server's ``GET`` description when
    it has one; ``input_size`` / ``crop`` / ``labels`` override it (without one: 224, 0.875, none).
    ``token_env`` names an environment variable whose value is sent as ``auth_header: auth_scheme TOKEN``.
    """
    if urlsplit(url).username is not None or urlsplit(url).password is not None:
        raise ConfigError(f"model {urlsplit(url).scheme}://…: credentials do not belong in the URL (they would "
                          "show in logs and outputs); put the token in an environment variable named by "
                          "model_options.token_env")
    headers = {}
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigError(f"model_options.token_env={token_env!r}: the environment variable is not set")
        headers[auth_header] = f"{auth_scheme} {token}".strip()
    size = _input_size_option(input_size)
    client = HttpForward(url, timeout=timeout, retries=retries, backoff=backoff, in_flight=in_flight,
                         max_batch=max_batch or DEFAULT_MAX_BATCH, max_queries=max_queries, rate=rate, dtype=dtype,
                         scores=scores, headers=headers, verify=verify, ca_bundle=ca_bundle)
    info = client.describe()
    served = _input_size_option(info.get("input_size"), f"{url}: the server's input_size")
    size = size or served or (DEFAULT_SIDE, DEFAULT_SIDE)
    if crop is not None or not served or not isinstance(info.get("resize"), (int, type(None))):
        resize = resize_for(size, crop)
    else:
        resize = info.get("resize")
    if max_batch is None and isinstance(info.get("max_batch"), int) and info["max_batch"] > 0:
        client.max_batch = info["max_batch"]
    classes = info.get("classes") if isinstance(info.get("classes"), int) else None
    names = class_names(labels, classes) if labels is not None else _served_names(info, classes)
    return LoadedModel(client, size, resize, names, url, None, normalization=_served_normalization(info))


def _input_size_option(value: Any, what: str = "model_options.input_size") -> tuple[int, int] | None:
    try:
        return input_size(value, what)
    except ConfigError as e:
        if what.startswith("model_options"):
            raise
        raise ModelUnavailableError(str(e)) from None


def _served_names(info: dict, classes: int | None) -> list[str] | None:
    names = info.get("class_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names) and names:
        return names
    return class_names(None, classes)


def _served_normalization(info: dict) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    norm = info.get("normalization")
    try:
        mean, std = tuple(float(v) for v in norm["mean"]), tuple(float(v) for v in norm["std"])
    except (TypeError, KeyError, ValueError):
        return None
    return (mean, std) if len(mean) == len(std) == 3 else None
