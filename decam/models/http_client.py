"""The transport under ``http://`` and ``https://`` models: keep-alive connections (one per thread),
a deadline per request, retries with backoff, a request rate limit, and counters.

Standard library only (``http.client``, ``ssl``): every request has a bounded time whatever the
server does, which is what a search over a network needs more than features.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from decam.errors import ConfigError

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
"""Answers worth another try: rate limited, or the server failed (a 4xx other than 429 will not change)."""
MAX_BACKOFF = 30.0


@dataclass
class Reply:
    """One HTTP answer, read whole."""

    status: int
    reason: str
    headers: dict[str, str]
    """Lower-case header names."""
    body: bytes

    def message(self) -> str:
        """The answer in one line: status, reason and the start of a text body."""
        text = ""
        if "json" in self.headers.get("content-type", "") or "text" in self.headers.get("content-type", ""):
            text = " ".join(self.body[:300].decode("utf-8", "replace").split())
        return f"{self.status} {self.reason}" + (f": {text}" if text else "")


class RequestFailed(Exception):
    """An attempt that got no usable answer; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, retry: bool, wait: float | None = None, reply: Reply | None = None,
                 abandoned: bool = False) -> None:
        super().__init__(message)
        self.retry, self.wait, self.reply, self.abandoned = retry, wait, reply, abandoned
        self.attempts = 1
        """How many attempts were made when it was given up (set by :func:`with_retries`)."""


@dataclass
class Counters:
    """What the client did: images scored (the cost), HTTP requests sent and retries among them."""

    images: int = 0
    requests: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for key, value in amounts.items():
                setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {"images": self.images, "requests": self.requests, "retries": self.retries}


class RateLimit:
    """At most ``rate`` request starts per second, over all threads (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            time.sleep(start - now)


class Endpoint:
    """One URL: ``request`` sends a method and body there on this thread's keep-alive connection and
    reads the whole answer within ``timeout`` seconds (connecting included)."""

    def __init__(self, url: str, *, timeout: float, verify: bool = True, ca_bundle: str | None = None,
                 headers: dict[str, str] | None = None, on_resend: Callable[[], None] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"model {url!r}: expected http://HOST[:PORT]/PATH or https://...")
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConfigError(f"model {url!r}: the port is not a number in 0-65535") from None
        self.url, self.scheme, self.host = url, parts.scheme, parts.hostname
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout, self.headers = float(timeout), dict(headers or {})
        self.context = _tls_context(verify, ca_bundle) if self.scheme == "https" else None
        self.local = threading.local()
        self.on_resend = on_resend

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.context is not None:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.local.conn = conn
        return conn

    def close(self) -> None:
        """Drop this thread's connection (the next request opens a new one)."""
        conn = getattr(self.local, "conn", None)
        self.local.conn = None
        if conn is not None:
            conn.close()

    def request(self, method: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        """Send and read one exchange; RequestFailed (``retry=True``) when the connection or the time fails.

        A kept-alive connection the server closed while idle fails before any answer: that request is
        sent again at once on a new connection (the server never saw it), not counted as a retry.
        """
        headers = {**self.headers, **(headers or {})}
        reused = getattr(self.local, "conn", None) is not None and self.local.conn.sock is not None
        try:
            try:
                return self._exchange(method, body, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                if not reused or getattr(e, "answered", False):
                    raise
                self.close()
                if self.on_resend is not None:
                    self.on_resend()
                return self._exchange(method, body, headers)
        except (TimeoutError, socket.timeout):
            self.close()
            raise RequestFailed(f"no answer within timeout={self.timeout:g} s", retry=True) from None
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise RequestFailed(f"TLS certificate not trusted ({e.verify_message}); set model_options.ca_bundle "
                                "or, for a test server only, model_options.verify=false", retry=False) from None
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise RequestFailed(_describe(e), retry=True) from None

    def _exchange(self, method: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        deadline = time.monotonic() + self.timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            return left

        conn = self._connection()
        conn.timeout = self.timeout  # connecting, and sending the whole body (sendall's timeout is its total)
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        conn.request(method, self.path, body=body, headers=headers)
        conn.sock.settimeout(remaining())
        response = conn.getresponse()
        try:
            chunks = []
            while True:
                left = remaining()
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                chunk = response.read1(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            if response.length:  # read1 ends quietly when the server dies mid-body: a dropped connection
                raise http.client.IncompleteRead(b"".join(chunks), response.length)
        except (ConnectionResetError, BrokenPipeError) as e:
            e.answered = True  # the server had started answering: a real failure, not an idle close
            raise
        response.close()  # the connection stays open for the next request (unless the server closes it)
        if response.will_close:
            self.close()
        return Reply(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()},
                     b"".join(chunks))


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(e, http.client.IncompleteRead):
        return "the connection closed in the middle of the answer"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host ({e.strerror})"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}" + (f": {text}" if text else "")


def _tls_context(verify: bool, ca_bundle: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"model_options.ca_bundle={ca_bundle!r}: cannot read CA certificates ({e})") from None


def retry_after(reply: Reply) -> float | None:
    """Seconds a ``Retry-After`` header asks for (numeric form only)."""
    try:
        return max(0.0, float(reply.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def with_retries(attempt: Callable[[], object], *, retries: int, backoff: float, counters: Counters,
                 limit: RateLimit, abandoned: threading.Event | None = None) -> object:
    """``attempt()`` until it returns, at most ``1 + retries`` times, sleeping ``backoff · 2^k`` (with
    jitter, or what the server asked for) between tries; the last RequestFailed is raised. Once
    ``abandoned`` is set (another part of the batch failed for good) no further attempt starts."""
    for k in range(retries + 1):
        limit.wait()
        if abandoned is not None and abandoned.is_set():
            raise RequestFailed("abandoned: another request of the batch failed", retry=False, abandoned=True)
        counters.add(requests=1, retries=1 if k else 0)
        try:
            return attempt()
        except RequestFailed as e:
            if not e.retry or k == retries:
                e.attempts = k + 1
                raise
            pause = e.wait if e.wait is not None else backoff * 2**k * random.uniform(0.5, 1.0)
            time.sleep(min(pause, MAX_BACKOFF))
    raise AssertionError("unreachable")
