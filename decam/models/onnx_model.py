"""``--model onnx:PATH``: a model exported to ONNX, run by ONNX Runtime (``pip install onnxruntime``).

The graph's first input takes the images and its first output gives the scores. Input size and
layout come from the graph where it fixes them; pixels go in as decam has them ([0, 1]) unless
``mean``/``std`` say the graph expects normalized input; a fixed batch axis is filled chunk by chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import numpy as np
import torch

from decam.errors import ConfigError, ModelOutputError, ModelUnavailableError
from decam.models.loaded import LoadedModel
from decam.models.remote import DEFAULT_SIDE, class_names, input_size, normalization, resize_for
from decam.models.wire import WireError, as_logits
from decam.registry import Range

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxForward:
    """Pixel-space batch → logits through an ONNX Runtime session (thread-safe, as ``session.run`` is)."""

    def __init__(self, session, *, layout: str, fixed_batch: int | None,
                 norm: tuple[tuple[float, ...], tuple[float, ...]] | None, scores: str) -> None:
        first = session.get_inputs()[0]
        self.session, self.input_name = session, first.name
        self.output_name = session.get_outputs()[0].name
        self.dtype = _DTYPES[first.type]
        self.layout, self.fixed_batch, self.scores = layout, fixed_batch, scores
        self.mean = self.std = None
        if norm is not None:
            self.mean, self.std = (torch.tensor(v).view(1, 3, 1, 1) for v in norm)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to("cpu", torch.float32)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        array = x.contiguous().numpy().astype(self.dtype, copy=False)
        n = array.shape[0]
        if self.fixed_batch is None or n == self.fixed_batch:
            out = self._run(array)
        else:  # a graph with a fixed batch axis: full chunks, the last one padded with its own last image
            size, parts = self.fixed_batch, []
            for start in range(0, n, size):
                chunk = array[start:start + size]
                pad = size - chunk.shape[0]
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
                parts.append(self._run(chunk)[: size - pad])
            out = np.concatenate(parts)
        scores = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
        if scores.ndim != 2 or not torch.isfinite(scores).all() or self.scores == "logits":
            return scores  # the runner names a wrong shape or NaN
        try:
            return as_logits(scores, self.scores)
        except WireError as e:
            raise ModelOutputError(f"ONNX model: {e}") from None

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: array})[0]


def onnx_model(
    path: str,
    *,
    input_size: Optional[list[int]] = None,
    crop: Annotated[float, Range(0.0, 1.0, low_open=True)] = 0.875,
    mean: Optional[list[float]] = None,
    std: Optional[list[float]] = None,
    layout: Literal["auto", "NCHW", "NHWC"] = "auto",
    labels: Optional[str] = None,
    scores: Literal["logits", "probabilities"] = "logits",
    providers: Optional[list[str]] = None,
    threads: Annotated[Optional[int], Range(1, 1024)] = None,
) -> LoadedModel:
    """An ONNX graph run by ONNX Runtime. ``mean``/``std``: the graph expects ``(x - mean) / std``
    (null: pixels in [0, 1]); ``providers``: execution providers in order of preference (null: CPU);
    ``threads``: ONNX Runtime's intra-op threads (null: its default)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelUnavailableError("onnx models need ONNX Runtime: pip install onnxruntime "
                                    "(or onnxruntime-gpu)") from None
    if not Path(path).is_file():
        raise ModelUnavailableError(f"onnx:{path}: no such file")
    norm = normalization(mean, std)
    available = ort.get_available_providers()
    providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
    unknown = [p for p in providers if p not in available]
    if unknown or not providers:
        raise ConfigError(f"model_options.providers={providers}: not available here; available: {', '.join(available)}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ONNX Runtime's warnings are about its own graph rewrites
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as e:  # a corrupt or unsupported graph: ONNX Runtime raises its own exception types
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise ModelUnavailableError(f"onnx:{path}: ONNX Runtime cannot load it ({first})") from None
    first = session.get_inputs()[0]
    if first.type not in _DTYPES or len(first.shape) != 4:
        raise ModelUnavailableError(f"onnx:{path}: input {first.name!r} is {first.type} {first.shape}; "
                                    "expected a float image batch of 4 dimensions")
    layout = _layout(first.shape) if layout == "auto" else layout
    dims = first.shape[2:4] if layout == "NCHW" else first.shape[1:3]
    graph_size = tuple(dims) if all(isinstance(d, int) for d in dims) else None
    size = _size(input_size, graph_size, path)
    batch = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else None
    out_shape = session.get_outputs()[0].shape
    classes = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
    forward = OnnxForward(session, layout=layout, fixed_batch=batch, norm=norm, scores=scores)
    return LoadedModel(forward, size, resize_for(size, crop), class_names(labels, classes), f"onnx:{path}",
                       None, normalization=norm)


def _layout(shape: list) -> str:
    """NCHW unless only the last axis can hold the three colour channels."""
    return "NHWC" if shape[1] != 3 and shape[3] == 3 else "NCHW"


def _size(option: list[int] | None, graph: tuple[int, int] | None, path: str) -> tuple[int, int]:
    size = input_size(option)
    if graph is not None and size is not None and size != graph:
        raise ConfigError(f"model_options.input_size={list(size)}: onnx:{path} takes {list(graph)} only")
    if graph is None and size is None:
        return (DEFAULT_SIDE, DEFAULT_SIDE)
    return size or graph

