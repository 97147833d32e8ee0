"""Servers for the remote-model tests, all on 127.0.0.1: a scripted fake (stdlib, in a thread) whose
every answer a test chooses, and a real ``decam serve`` in a subprocess."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from decam.models.wire import decode_images, encode_scores, model_info

TESTS = Path(__file__).parent
CLASSES = 10


def tiny_scores(x: torch.Tensor) -> torch.Tensor:
    """The scores of ``tiny_models:tiny`` (fixed random read-out of a 6x6 pooled image)."""
    from tiny_models import Tiny

    return Tiny()(x)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    """Close the connection without answering."""
    truncate: bool = False
    """Announce the whole body, send only its first half, then close (a server dying mid-answer)."""


def scores_answer(request: Request, scores: Callable[[torch.Tensor], torch.Tensor] = tiny_scores) -> Answer:
    """A correct answer: the tiny model's logits for the posted images (or its description for GET)."""
    if request.method == "GET":
        import json

        info = model_info("fake", (48, 48), None, [f"class{i}" for i in range(CLASSES)], CLASSES)
        return Answer(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
    return Answer(200, encode_scores(scores(decode_images(request.body))), {"Content-Type": "application/x-npy"})


class FakeServer:
    """``handler(request, index)`` → :class:`Answer`, on a free port of 127.0.0.1; keeps every request."""

    def __init__(self, handler: Callable[[Request, int], Answer] = lambda r, i: scores_answer(r),
                 keep_alive: bool = True, tls: tuple[Path, Path] | None = None) -> None:
        self.handler, self.requests, self.connections = handler, [], []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length))
                with outer.lock:
                    outer.requests.append(request)
                    index = len(outer.requests) - 1
                answer = outer.handler(request, index)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if answer.truncate:
                    self.wfile.write(answer.body[: len(answer.body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(answer.body)

            do_GET = do_POST = _serve

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer.connections.append(self.connection)

            def handle(self) -> None:
                try:
                    super().handle()
                except (ConnectionError, OSError):  # a client that gave up (timeout tests) or a TLS refusal
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/predict"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop as a killed server would: no listener and every open connection closed."""
        import socket

        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command (the test skips without it)."""
    import shutil

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def env(**extra: str) -> dict[str, str]:
    """This process's environment with tests/ on PYTHONPATH (for ``tiny_models:...``)."""
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


class DecamServe:
    """``decam serve MODEL --port PORT`` (default 0: a free one) in a subprocess; ``url`` once it is
    listening, ``lines`` as it logs."""

    def __init__(self, model: str, *args: str, port: int = 0, timeout: float = 120.0, **environ: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "decam", "serve", model, "--port", str(port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(**environ))
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline - time.monotonic())
            if line is None:
                self.stop()
                raise RuntimeError("decam serve did not start:\n" + "".join(self.log))
            if line.startswith("decam serve: ") and " at " in line:
                self.url = line.split(" at ", 1)[1].split()[0]
                return

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            return None

    def wait_for_posts(self, n: int, timeout: float = 120.0) -> None:
        """Block until the server has logged ``n`` POSTs (it logs each request unless --quiet)."""
        seen, deadline = 0, time.monotonic() + timeout
        while seen < n:
            line = self.next_line(deadline - time.monotonic())
            if line is None:
                raise RuntimeError(f"saw {seen} of {n} POSTs:\n" + "".join(self.log))
            seen += '"POST ' in line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> DecamServe:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
