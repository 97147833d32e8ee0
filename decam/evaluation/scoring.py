"""Scoring methods on one image: its target classes, every method's map, and the metric suite — nothing written.

:class:`ImageScorer` is what a local ``decam evaluate`` and a Ray worker both run per image; the
workflow around it (decam.workflows.evaluate) writes tables, maps and figures.

An image is explained for one class (its label, else the model's top-1) or, given a ``choose``
function (``decam evaluate --targets``), for several: each class gives one row per method, with its
``rank`` (1 = the first class, the one decam's search is scored on; 2, 3, … the others). A method
with :attr:`~decam.evaluation.methods.Method.shares_targets` (decam) finds every class's map with
ONE run: that run's ``seconds`` and ``queries`` are reported once, on the rank-1 row, and the other
classes' rows of that method carry 0 for both (their maps cost nothing more); every other method
runs once per class and each row carries its own cost. Sanity checks and stability (which re-run the
methods) are measured for the rank-1 class only; the other rows leave those columns empty.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from decam.errors import ConfigError, DecamError, InputError
from decam.evaluation.building import MethodBuilder
from decam.evaluation.methods import Method
from decam.evaluation.metrics.sanity import network, stage_names
from decam.evaluation.metrics.suite import Column, MapScores, MetricSettings, MetricSuite, columns
from decam.io.images import open_image, to_input
from decam.models import LoadedModel, ModelRunner


@dataclass
class Row:
    """One method's scores on one image (AUCs in [0, 1]): insertion / deletion with the substrates named,
    and the rest of the metric suite in ``scores`` (keys: :func:`~decam.evaluation.metrics.suite.columns`)."""

    image: str
    stem: str
    method: str
    target: int
    class_name: str
    probability: float
    insertion: float
    deletion: float
    diff: float
    seconds: float
    queries: int
    insertion_substrate: str = "blur"
    deletion_substrate: str = "zero"
    rank: int = 1
    """The class's place among the image's targets: 1 = the first (decam's searched class), 2, 3, … the others."""
    scores: dict[str, float] = field(default_factory=dict)

    def record(self, keys: list[str]) -> dict[str, object]:
        """A ``results.csv`` line: the fixed fields, then ``keys`` from ``scores`` (empty where missing)."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scores"}
        return out | {k: self.scores.get(k, "") for k in keys}

    @classmethod
    def from_record(cls, rec: dict[str, str]) -> Row:
        """The inverse of :meth:`record` for a line read back from ``results.csv``."""
        kinds = {"target": int, "rank": int, "queries": int, "probability": float, "insertion": float, "deletion": float,
                 "diff": float, "seconds": float}
        names = {f.name for f in fields(cls)} - {"scores"}
        fixed = {k: kinds.get(k, str)(v) for k, v in rec.items() if k in names}
        return cls(**fixed, scores={k: float(v) for k, v in rec.items() if k not in names and v not in ("", None)})


@dataclass
class ImageResult:
    """All methods on one image, or why the image was skipped."""

    image: str
    stem: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0


@dataclass
class ClassMaps:
    """One class explained on an image: each method's map and what the metric suite measured of it."""

    target: int
    class_name: str
    probability: float
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, MapScores] = field(default_factory=dict)


@dataclass
class ImageScores:
    """What scoring one image gives, before anything is written (it may travel from a Ray worker):
    the result, the model input ``(3, H, W)`` on the CPU, and per class each method's map and curves."""

    result: ImageResult
    x: torch.Tensor | None = None
    classes: list[ClassMaps] = field(default_factory=list)
    """Every class explained, in rank order (the first is decam's searched class)."""

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """Each method's map of the first class."""
        return self.classes[0].maps if self.classes else {}

    @property
    def scores(self) -> dict[str, MapScores]:
        """Each method's scores on the first class."""
        return self.classes[0].scores if self.classes else {}


TargetChooser = Callable[[torch.Tensor, Optional[int]], list[int]]
"""``(the image's logits (C,), its label or None) → the classes to explain``, the searched one first."""


def run_method(method: Method, x: torch.Tensor, targets: list[int]) -> list[tuple[np.ndarray, float, int]]:
    """``(map, seconds, queries)`` per class of ``targets``: one run for all of them when the method
    :attr:`~decam.evaluation.methods.Method.shares_targets` (its cost on the first class, 0 on the
    others), else one run per class with its own cost."""
    if method.shares_targets and len(targets) > 1:
        start = time.perf_counter()
        maps = method.maps_for(x, targets)
        first = (maps[0], time.perf_counter() - start, method.queries)
        return [first] + [(sal, 0.0, 0) for sal in maps[1:]]
    out = []
    for t in targets:
        start = time.perf_counter()
        sal = method(x, t)
        out.append((sal, time.perf_counter() - start, method.queries))
    return out


def read_labels(path: str | Path) -> dict[str, int]:
    """``file,class_index`` CSV (extra columns ignored) → {file name: class index}."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"file", "class_index"} - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"{path}: labels CSV lacks column(s) {', '.join(sorted(missing))} "
                                 "(expected file,class_index)")
            out = {}
            for line, rec in enumerate(reader, start=2):
                try:
                    out[Path(rec["file"]).name] = int(rec["class_index"])
                except (TypeError, ValueError):
                    raise InputError(f"{path}:{line}: class_index {rec['class_index']!r} is not an integer") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read labels ({e})") from None
    return out


class ImageScorer:
    """Every method on one image, scored by the metric suite (``settings``, default
    :class:`~decam.evaluation.metrics.suite.MetricSettings`) through ``runner``. Sanity checks and
    stability re-run the methods: they need the ``builder`` the methods came from."""

    def __init__(self, model: LoadedModel, methods: dict[str, Method], *, labels: dict[str, int] | None = None,
                 runner: ModelRunner | None = None, device: str | torch.device = "cpu",
                 settings: MetricSettings | None = None, builder: MethodBuilder | None = None,
                 choose: TargetChooser | None = None) -> None:
        self.model, self.methods, self.labels, self.choose = model, methods, labels, choose
        self.device = torch.device(device)
        self.runner = runner or ModelRunner(model.forward)
        if model.module is not None:
            model.module.to(self.device)
        self.settings = settings or MetricSettings()
        self.suite = MetricSuite(self.settings, self.runner, model.normalization, self.runner.batch_size)
        self.builder = builder
        self._warm = False
        self.stages: list[str] = []
        if self.settings.reruns and builder is None:
            raise ConfigError("the sanity and stability metrics re-run the methods: give the evaluation the "
                              "MethodBuilder that built them")
        if "sanity" in self.settings.metrics:
            self.stages = stage_names(network(model), self.settings.sanity_blocks)

    @property
    def columns(self) -> list[Column]:
        """The metric columns of this evaluation's rows, beyond insertion / deletion / DiffAUC."""
        return columns(self.settings, self.stages)

    def targets_for(self, path: Path, x: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        """The classes to explain on ``x`` — the label from the CSV (else the model's top-1 class), or
        what ``choose`` makes of the logits and that label — and the softmax probabilities ``(C,)``."""
        with torch.inference_mode():
            logits = ModelRunner(self.model.forward, where="on the image")(x.unsqueeze(0))[0]
        label = None
        if self.labels is not None:
            if path.name not in self.labels:
                raise InputError(f"{path.name}: not in the labels CSV")
            label = self.labels[path.name]
            if not 0 <= label < logits.numel():
                raise InputError(f"{path.name}: label {label} is outside the model's {logits.numel()} classes")
        if self.choose is not None:
            targets = list(self.choose(logits, label))
        else:
            targets = [int(logits.argmax()) if label is None else label]
        return targets, logits.softmax(-1)

    def warm_up(self, x: torch.Tensor) -> None:
        """One untimed batch through the shared forward path and every method's own (decam's), before the
        first image: one-off set-up (oneDNN primitives, allocator pools) is no method's cost per photo."""
        self._warm = True
        batch = x.unsqueeze(0).expand(self.runner.batch_size, -1, -1, -1).contiguous()
        with torch.inference_mode():
            self.runner(batch)
            for method in self.methods.values():
                method.warm_up(batch)

    def score(self, path: str | Path, stem: str, image: Image.Image | None = None) -> ImageScores:
        """All methods on one image (``image``: already decoded, else opened from ``path``) for each of
        its classes; nothing is written. Any failure → ImageScores whose result has ``error`` and no rows."""
        path = Path(path)
        result = ImageResult(str(path), stem)
        method = None
        try:
            x = to_input(open_image(path) if image is None else image, self.model.input_size,
                         self.model.resize).to(self.device)
            if not self._warm:
                self.warm_up(x)
            targets, probs = self.targets_for(path, x)
            classes = [ClassMaps(t, self.model.class_name(t), float(probs[t])) for t in targets]
            rows: list[list[Row]] = [[] for _ in classes]
            for method, explain in self.methods.items():
                for rank, (cls, (sal, seconds, queries)) in enumerate(zip(classes, run_method(explain, x, targets)), 1):
                    cls.maps[method] = sal
                    s = cls.scores[method] = self.suite.score_map(x, sal, cls.target)
                    if self.settings.reruns and rank == 1:
                        s.values.update(self.suite.rerun(self.builder.factory(method), self.model, x, cls.target,
                                                         probs.numel()))
                    c = s.curves
                    rows[rank - 1].append(Row(str(path), result.stem, method, cls.target, cls.class_name,
                                              cls.probability, c.insertion, c.deletion, c.diff, seconds, queries,
                                              c.insertion_substrate, c.deletion_substrate, rank, dict(s.values)))
            result.rows = [row for per_class in rows for row in per_class]
        except KeyboardInterrupt:
            raise
        except Exception as e:  # reported and skipped: one bad image or method failure must not end the run
            return self.failed(path, stem, e, method)
        return ImageScores(result, x.cpu(), classes)

    def failed(self, path: str | Path, stem: str, error: Exception, method: str | None = None) -> ImageScores:
        """An image that ``error`` stopped (while ``method`` ran, or before any): no rows, a one-line error."""
        msg = " ".join(str(error).split()) if isinstance(error, DecamError) else f"{type(error).__name__}: {error}"
        where = f"{method}: " if method else ""
        prefix = "" if msg.startswith(str(path)) else f"{path}: "
        code = error.exit_code if isinstance(error, DecamError) else 1
        return ImageScores(ImageResult(str(path), stem, error=f"{prefix}{where}{msg}", exit_code=code))
