"""Scoring methods on one image: its target, every method's map, and the metric — nothing written.

:class:`ImageScorer` is what a local ``decam evaluate`` and a Ray worker both run per image; the
workflow around it (decam.workflows.evaluate) writes tables, maps and figures.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from decam.errors import ConfigError, DecamError, InputError
from decam.evaluation.methods import METHODS, Method, create_method
from decam.evaluation.metrics import CurveScores, insertion_deletion
from decam.io.images import open_image, to_input
from decam.models import LoadedModel, ModelRunner


@dataclass
class Row:
    """One method's scores on one image (AUCs in [0, 1])."""

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


@dataclass
class ImageResult:
    """All methods on one image, or why the image was skipped."""

    image: str
    stem: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0


@dataclass
class ImageScores:
    """What scoring one image gives, before anything is written (it may travel from a Ray worker):
    the result, the model input ``(3, H, W)`` on the CPU, and each method's map and curves."""

    result: ImageResult
    x: torch.Tensor | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, CurveScores] = field(default_factory=dict)


def split_method_options(overrides: list[str]) -> tuple[list[str], dict[str, dict]]:
    """``key=value`` overrides → (decam config overrides, {method: options}).

    A key whose first part names a registered method other than ``decam`` (``gradcam.target_layer=net.layer4``,
    ``rise.n_masks=2000``) is that method's option; every other key configures the decam method.
    """
    from omegaconf import OmegaConf

    config, options = [], {}
    for item in overrides:
        key, _, value = item.partition("=")
        head, dot, rest = key.partition(".")
        if dot and head != "decam" and head in METHODS:
            options.setdefault(head, {}).update(OmegaConf.to_container(OmegaConf.from_dotlist([f"{rest}={value}"])))
        else:
            config.append(item)
    return config, options


def build_methods(names: Sequence[str], model: LoadedModel, config, options: dict[str, dict] | None = None,
                  runner: ModelRunner | None = None) -> dict[str, Method]:
    """Validated options → one bound method per name (target layers are resolved here, before any image).

    ``runner``: where the query methods send their batches (the shared fast path); ``decam``
    builds its own from ``config``."""
    from decam.config import validate_section

    options = options or {}
    unused = set(options) - set(names)
    if unused:
        raise ConfigError(f"options given for {', '.join(sorted(unused))}, which --methods does not include")
    if not names:
        raise ConfigError("no methods to evaluate")
    out = {}
    for name in names:
        if name in out:
            raise ConfigError(f"method {name!r} is listed twice")
        if name == "decam":
            out[name] = create_method(name, model, config=config)
            continue
        params = validate_section(name, METHODS, {"name": name, **options.get(name, {})}, skip=1)
        params.pop("name")
        out[name] = create_method(name, model, runner, **params)
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
    """Every method on one image, scored by insertion / deletion through ``runner``."""

    def __init__(self, model: LoadedModel, methods: dict[str, Method], *, labels: dict[str, int] | None = None,
                 runner: ModelRunner | None = None, device: str | torch.device = "cpu") -> None:
        self.model, self.methods, self.labels = model, methods, labels
        self.device = torch.device(device)
        self.runner = runner or ModelRunner(model.forward)
        if model.module is not None:
            model.module.to(self.device)

    def target_for(self, path: Path, x: torch.Tensor) -> tuple[int, float]:
        """The label from the CSV (else the model's top-1 class) and its probability on ``x``."""
        with torch.inference_mode():
            probs = ModelRunner(self.model.forward, where="on the image")(x.unsqueeze(0)).softmax(-1)[0]
        if self.labels is None:
            target = int(probs.argmax())
        elif path.name not in self.labels:
            raise InputError(f"{path.name}: not in the labels CSV")
        else:
            target = self.labels[path.name]
        if not 0 <= target < probs.numel():
            raise InputError(f"{path.name}: label {target} is outside the model's {probs.numel()} classes")
        return target, float(probs[target])

    def score(self, path: str | Path, stem: str, image: Image.Image | None = None) -> ImageScores:
        """All methods on one image (``image``: already decoded, else opened from ``path``); nothing
        is written. Any failure → ImageScores whose result has ``error`` and no rows."""
        path = Path(path)
        result = ImageResult(str(path), stem)
        method = None
        try:
            x = to_input(open_image(path) if image is None else image, self.model.input_size,
                         self.model.resize).to(self.device)
            target, prob = self.target_for(path, x)
            maps, scores = {}, {}
            for method, explain in self.methods.items():
                start = time.perf_counter()
                maps[method] = explain(x, target)
                seconds = time.perf_counter() - start
                s = insertion_deletion(self.runner, x, maps[method], target, batch_size=self.runner.batch_size)
                scores[method] = s
                result.rows.append(Row(str(path), result.stem, method, target, self.model.class_name(target),
                                       prob, s.insertion, s.deletion, s.diff, seconds, explain.queries))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # reported and skipped: one bad image or method failure must not end the run
            return self.failed(path, stem, e, method)
        return ImageScores(result, x.cpu(), maps, scores)

    def failed(self, path: str | Path, stem: str, error: Exception, method: str | None = None) -> ImageScores:
        """An image that ``error`` stopped (while ``method`` ran, or before any): no rows, a one-line error."""
        msg = " ".join(str(error).split()) if isinstance(error, DecamError) else f"{type(error).__name__}: {error}"
        where = f"{method}: " if method else ""
        prefix = "" if msg.startswith(str(path)) else f"{path}: "
        code = error.exit_code if isinstance(error, DecamError) else 1
        return ImageScores(ImageResult(str(path), stem, error=f"{prefix}{where}{msg}", exit_code=code))
