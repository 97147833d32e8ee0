"""``decam serve``: any model decam can load, behind decam's HTTP protocol (decam.models.wire).

Starlette (the ASGI toolkit under FastAPI; an ``.npy`` body needs none of FastAPI's JSON models)
on uvicorn. ``POST PATH`` scores a batch through the same fast forward path a search uses, one
batch at a time (concurrent requests overlap their transfers with the model, not two forwards on
the same cores); ``GET PATH`` describes the model.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import Any

import torch

from decam.errors import ConfigError, ModelOutputError
from decam.models import LoadedModel, ModelRunner
from decam.models.wire import (CONTENT_TYPE, SCORES_HEADER, WireError, decode_images, encode_scores,
                               model_info)


class ModelService:
    """What the endpoint runs: checked, counted forward passes one at a time, and the model's description."""

    def __init__(self, model: LoadedModel, forward: Callable[[torch.Tensor], torch.Tensor], *,
                 batch_size: int = 64, max_batch: int = 256) -> None:
        self.model, self.max_batch = model, max_batch
        self.device = getattr(forward, "device", torch.device("cpu"))
        self.channels_last = bool(getattr(forward, "channels_last", False))  # the layout a search sends
        self.runner = ModelRunner(forward, batch_size)
        self.lock = threading.Lock()
        probe = torch.zeros(1, 3, *model.input_size)  # fails early for a broken model, and gives C
        classes = self.score(probe).shape[1]
        self.runner.queries = 0
        self.info = model_info(model.name, model.input_size, model.resize, model.class_names, classes,
                               model.normalization, max_batch)
        height, width = model.input_size
        self.max_body = max_batch * 3 * (2 * height) * (2 * width) * 4 + 4096
        """Largest request accepted: ``max_batch`` float32 images of twice the input's sides."""

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)`` for pixel-space images; ModelOutputError when the model fails."""
        x = x.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with self.lock:
            return self.runner(x)


def create_app(service: ModelService, path: str = "/predict") -> Any:
    """The ASGI application: ``GET path`` → the description (JSON), ``POST path`` → scores (.npy)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def endpoint(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(service.info)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > service.max_body:
            return error(413, f"body of {declared} bytes is over this server's {service.max_body}")
        body = await read_body(request, int(declared) if declared and declared.isdigit() else None,
                               service.max_body)
        if body is None:
            return error(413, f"body is over this server's {service.max_body} bytes")
        try:
            x = decode_images(body)
        except WireError as e:
            return error(400, str(e))
        if x.shape[0] > service.max_batch:
            return error(413, f"{x.shape[0]} images in one request; this server takes at most {service.max_batch}")
        try:
            scores = await run_in_threadpool(service.score, x)
        except ModelOutputError as e:
            if not torch.isfinite(x).all():  # checked only then: it costs a pass over every pixel
                return error(400, "images hold NaN or infinite values")
            return error(500, str(e))
        return Response(encode_scores(scores), media_type=CONTENT_TYPE, headers={SCORES_HEADER: "logits"})

    return Starlette(routes=[Route(path, endpoint, methods=["GET", "POST"])])


async def read_body(request: Any, length: int | None, limit: int) -> bytearray | None:
    """The request body in one writable buffer (filled in place when its length is declared); None
    past ``limit`` bytes or when the body is longer than declared."""
    if length is None:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
        return body
    body, filled = bytearray(length), 0
    view = memoryview(body)
    async for chunk in request.stream():
        if filled + len(chunk) > length:
            return None
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    return body if filled == length else body[:filled]


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); ConfigError when it cannot be had."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_server(app: Any, sock: socket.socket, *, log_requests: bool = True, ssl_certfile: str | None = None,
               ssl_keyfile: str | None = None) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM (uvicorn, one process)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="info" if log_requests else "warning", access_log=log_requests,
                            lifespan="off", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                            timeout_keep_alive=60)
    try:
        server = uvicorn.Server(config)
    except (OSError, ValueError) as e:  # unreadable TLS files
        raise ConfigError(f"cannot start the server ({e})") from None
    server.run(sockets=[sock])


def one_malloc_arena() -> bool:
    """Make every thread allocate from glibc's main arena (``M_ARENA_MAX=1``); False off glibc.

    The server runs the model in worker threads (not the main one, which runs the event loop), and
    a worker thread's own arena gave its heap back after every forward pass: 57,000 minor page
    faults and twice the time per 32-image EfficientNet-Lite0 batch, none with one arena. Set before
    any worker thread allocates.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("DECAM_NO_MALLOPT"):
        return False
    try:
        return ctypes.CDLL("libc.so.6").mallopt(-8, 1) == 1  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def build_service(config, max_batch: int) -> ModelService:
    """Load the model the config names, on its device and precision, as :class:`ModelService`."""
    from decam.models import FastForward, load_model, tune_allocator

    tune_allocator()
    one_malloc_arena()
    model = load_model(config.model, config.weights, config.get("model_options"))
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device}: no CUDA device is available")
    forward = FastForward(model, config.device, config.precision, fold=config.fold_batchnorm, compile=config.compile)
    return ModelService(model, forward, batch_size=config.batch_size, max_batch=max_batch)
