"""decam's HTTP protocol for black boxes, shared by the client (``http_model``) and ``decam serve``.

One request scores one batch: ``POST`` a ``.npy`` array of images ``(B, 3, H, W)`` in pixel space
([0, 1], float32 or float16), get back a ``.npy`` array ``(B, C)`` of float scores (logits, or
probabilities when the ``X-Decam-Scores`` header says so). ``GET`` on the same path may describe the
model as JSON (:func:`model_info`). ``.npy`` is exact, self-describing (dtype, shape, byte order in a
short text header), decoded without a copy, and readable anywhere numpy or a 50-line parser runs;
JSON numbers would be 5-10 times larger and base64 a third larger. See docs/remote-models.md.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
import torch

PROTOCOL = "decam-npy/1"
CONTENT_TYPE = "application/x-npy"
SCORES_HEADER = "X-Decam-Scores"
"""Response header naming what the scores are: ``logits`` or ``probabilities``."""
SCORE_KINDS = ("logits", "probabilities")
IMAGE_DTYPES = {"float32": np.float32, "float16": np.float16}
_MAGIC = b"\x93NUMPY"


class WireError(ValueError):
    """A body that is not what the protocol says (the message is one line, for the other side)."""


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (format 1.0) header of a C-ordered array of ``dtype`` and ``shape``."""
    header = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                   "shape": tuple(shape)}).encode("latin1")
    pad = 64 - (len(_MAGIC) + 4 + len(header) + 1) % 64  # numpy aligns the data to 64 bytes
    header += b" " * pad + b"\n"
    return _MAGIC + b"\x01\x00" + len(header).to_bytes(2, "little") + header


def encode(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes (format 1.0, C order, no pickle)."""
    array = np.ascontiguousarray(array)
    return npy_header(array.dtype, array.shape) + array.tobytes()


def decode(body: bytes, what: str = "body") -> np.ndarray:
    """A ``.npy`` body → a read-only array viewing ``body`` (no copy); WireError for anything else."""
    view = memoryview(body)
    if len(body) < 10 or bytes(view[:6]) != _MAGIC:
        start = bytes(view[:40]).decode("latin1", "replace")
        raise WireError(f"{what} is not a .npy array (starts with {start!r})")
    major = view[6]
    size_bytes = {1: 2, 2: 4, 3: 4}.get(major)
    if size_bytes is None:
        raise WireError(f"{what}: unsupported .npy format version {major}")
    start = 8 + size_bytes
    header_len = int.from_bytes(view[8:start], "little")
    try:
        header = ast.literal_eval(bytes(view[start:start + header_len]).decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(int(s) for s in header["shape"])
        fortran = bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError) as e:
        raise WireError(f"{what}: unreadable .npy header ({e})") from None
    if dtype.hasobject or fortran:
        raise WireError(f"{what}: .npy array must be C-ordered numbers, got {dtype} fortran_order={fortran}")
    count = int(np.prod(shape)) if shape else 1
    data = view[start + header_len:]
    if len(data) != count * dtype.itemsize:
        raise WireError(f"{what}: .npy data holds {len(data)} bytes, its header {shape} {dtype} needs "
                        f"{count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape)


def encode_images(x: torch.Tensor, dtype: str = "float32") -> bytearray:
    """A pixel-space batch ``(B, 3, H, W)`` as a request body (``dtype``: float32 or float16).

    The pixels are written once, straight into the body: layout (a search sends channels_last)
    and dtype are converted in that one copy.
    """
    wire = torch.float16 if dtype == "float16" else torch.float32
    header = npy_header(np.dtype(IMAGE_DTYPES[dtype]), tuple(x.shape))
    body = bytearray(len(header) + x.numel() * wire.itemsize)
    body[: len(header)] = header
    if x.numel():
        torch.frombuffer(body, dtype=wire, offset=len(header)).view(x.shape).copy_(x.detach())
    return body


def decode_images(body: bytes) -> torch.Tensor:
    """A request body (``bytearray``: decoded in place) → float32 images ``(B, 3, H, W)``; WireError for anything else."""
    array = decode(body, "request body")
    if array.dtype.kind != "f" or array.ndim != 4 or array.shape[1] != 3 or array.shape[0] < 1:
        raise WireError(f"request body holds {array.dtype} {tuple(array.shape)}; expected float images (B, 3, H, W)")
    copy = array.dtype != np.float32 or not array.flags.writeable  # a bytearray body is used in place
    return torch.from_numpy(array.astype(np.float32, copy=copy))


def encode_scores(scores: torch.Tensor) -> bytes:
    """Scores ``(B, C)`` as a response body (float32)."""
    return encode(scores.detach().to("cpu", torch.float32).numpy())


def decode_scores(body: bytes, n: int) -> torch.Tensor:
    """A response body → float32 scores ``(n, C)``; WireError for another shape, type or non-finite values."""
    array = decode(body, "response")
    if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[0] != n or array.shape[1] < 1:
        raise WireError(f"response holds {array.dtype} {tuple(array.shape)} for {n} images; expected scores ({n}, C)")
    scores = torch.from_numpy(array.astype(np.float32))
    if not torch.isfinite(scores).all():
        raise WireError("response holds NaN or infinite scores")
    return scores


def as_logits(scores: torch.Tensor, kind: str) -> torch.Tensor:
    """Scores of ``kind`` as logits: probabilities become log-probabilities (their softmax is the same
    distribution); WireError for probabilities outside [0, 1]."""
    if kind == "logits":
        return scores
    if kind != "probabilities":
        raise WireError(f"unknown scores kind {kind!r}; expected one of {', '.join(SCORE_KINDS)}")
    if scores.min() < -1e-4 or scores.max() > 1 + 1e-4:
        raise WireError(f"probabilities outside [0, 1] (min {float(scores.min()):.4g}, max {float(scores.max()):.4g})")
    return scores.clamp(1e-30, 1.0).log()


def model_info(name: str, input_size: tuple[int, int], resize: int | None, class_names: list[str] | None,
               classes: int | None, normalization: Any = None, max_batch: int | None = None) -> dict:
    """What ``GET`` on the endpoint answers: enough for a client to prepare images as the model expects."""
    return {
        "protocol": PROTOCOL,
        "name": name,
        "input_size": list(input_size),
        "resize": resize,
        "classes": classes,
        "class_names": class_names,
        "normalization": None if normalization is None else {"mean": list(normalization[0]),
                                                             "std": list(normalization[1])},
        "scores": "logits",
        "max_batch": max_batch,
        "dtypes": list(IMAGE_DTYPES),
    }
