"""Compare explanation methods on the same images, targets and metric (insertion / deletion, RISE protocol).

Per image and method it records insertion, deletion, DiffAUC, seconds and model queries, and writes
into the output folder: ``results.csv`` (one row per image and method, AUCs in [0, 1]),
``summary.md`` (×100 like the paper's Table 1), ``curves/<stem>.png`` (both curves of every method),
``gallery.png`` (photo | each method's map) and ``maps/<stem>/<method>.npy`` (float32 at the model's
input size, the exact maps that were scored). An image that fails (unreadable, no label, a method
error) is reported and left out of every table, so all methods are compared on the same images.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from decam.evaluation.methods import METHODS, Method, create_method
from decam.errors import ConfigError, DecamError, InputError, ModelOutputError
from decam.evaluation.tables import summary_markdown
from decam.io.images import open_image, to_input
from decam.io import atomic_open, save_npy
from decam.evaluation.metrics import CurveScores, insertion_deletion
from decam.models import LoadedModel
from decam.io.outputs import unique_stem


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
                  precision: str = "fp32") -> dict[str, Method]:
    """Validated options → one bound method per name (target layers are resolved here, before any image)."""
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
            out[name] = create_method(name, model, precision, config=config)
            continue
        params = validate_section(name, METHODS, {"name": name, **options.get(name, {})}, skip=1)
        params.pop("name")
        out[name] = create_method(name, model, precision, **params)
    return out


def evaluation_spec(config, methods: Sequence[str], options: dict[str, dict] | None = None,
                    labels: dict[str, int] | None = None) -> str:
    """Everything :meth:`Evaluation.from_spec` needs, as one JSON string (a Ray worker rebuilds the
    Evaluation from it): the decam config, which holds the model, the methods, their options and the labels."""
    from omegaconf import OmegaConf

    return json.dumps({"config": OmegaConf.to_container(config), "methods": list(methods),
                       "options": options or {}, "labels": labels}, sort_keys=True)


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


class Evaluation:
    """Built once from a model and named methods; ``run(images)`` scores every method on every image."""

    def __init__(
        self,
        model: LoadedModel,
        methods: dict[str, Method],
        out_dir: str | Path,
        *,
        labels: dict[str, int] | None = None,
        precision: str = "fp32",
        batch_size: int = 64,
        device: str | torch.device = "cpu",
        gallery_rows: int = 8,
    ) -> None:
        self.model, self.methods, self.out_dir = model, methods, Path(out_dir)
        self.labels, self.precision, self.batch_size = labels, precision, batch_size
        self.device, self.gallery_rows = torch.device(device), gallery_rows
        if model.module is not None:
            model.module.to(self.device)
        self.results: list[ImageResult] = []
        self._gallery: list[tuple[str, torch.Tensor, dict[str, np.ndarray]]] = []
        self._used_stems: set[str] = set()

    @classmethod
    def from_spec(cls, spec: str, out_dir: str | Path = ".", gallery_rows: int = 8,
                  device: str | None = None) -> Evaluation:
        """Load the model and build the methods an :func:`evaluation_spec` describes. ``device``
        overrides the config's (the driver of a Ray run, which only writes, stays on the CPU)."""
        from omegaconf import OmegaConf

        from decam.models import load_model, resolve_precision, tune_allocator

        spec = json.loads(spec)
        cfg = OmegaConf.create(spec["config"])
        if device is not None:
            cfg.device = device
        tune_allocator()
        model = load_model(cfg.model, cfg.weights)
        precision = resolve_precision(cfg.precision, torch.device(cfg.device))
        methods = build_methods(spec["methods"], model, cfg, spec["options"], precision)
        return cls(model, methods, out_dir, labels=spec["labels"], precision=precision, batch_size=cfg.batch_size,
                   device=cfg.device, gallery_rows=gallery_rows)

    def run(
        self,
        images: Sequence[str | Path],
        on_image: Callable[[ImageResult], None] | None = None,
        score_all: Callable[[list[tuple[Path, str]]], Iterable[ImageScores]] | None = None,
    ) -> list[ImageResult]:
        """Evaluate ``images`` in order, rewriting the tables after each; figures at the end.

        ``score_all`` scores the ``(path, stem)`` jobs elsewhere and yields their ImageScores in job
        order (:func:`decam.workflows.ray_tasks.ray_evaluate`); by default each image is scored here.
        """
        jobs = [(Path(path), unique_stem(str(path), self._used_stems)) for path in images]
        scored = score_all(jobs) if score_all is not None else (self.score(path, stem) for path, stem in jobs)
        for item in scored:
            result = self.record(item)
            if on_image is not None:
                on_image(result)
        if self._gallery:
            from decam.evaluation.figures import gallery

            save_figure(self.out_dir / "gallery.png", gallery(self._gallery))
        return self.results

    def target_for(self, path: Path, x: torch.Tensor) -> tuple[int, float]:
        """The label from the CSV (else the model's top-1 class) and its probability on ``x``."""
        with torch.inference_mode():
            probs = self.model.forward(x.unsqueeze(0)).float().softmax(-1)[0]
        if not torch.isfinite(probs).all():
            raise ModelOutputError("model returned NaN or infinite logits on the image")
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
                s = insertion_deletion(self.model.forward, x, maps[method], target,
                                       batch_size=self.batch_size, precision=self.precision)
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

    def record(self, scored: ImageScores) -> ImageResult:
        """Keep one image's outcome: its maps, curves and gallery row, then the tables rewritten."""
        result = scored.result
        if result.error is None:
            self.write_image_outputs(result.stem, scored.x, scored.maps, scored.scores, result.rows[0].class_name)
            if len(self._gallery) < self.gallery_rows:
                self._gallery.append((result.stem, scored.x, scored.maps))
        self.results.append(result)
        self.write_tables()
        return result

    def write_image_outputs(self, stem: str, x: torch.Tensor, maps: dict[str, np.ndarray],
                            scores: dict[str, CurveScores], class_name: str) -> None:
        from decam.evaluation.figures import curves_figure

        for method, sal in maps.items():
            save_npy(self.out_dir / "maps" / stem / f"{method}.npy", sal)
        save_figure(self.out_dir / "curves" / f"{stem}.png", curves_figure(stem, class_name, scores))

    def rows(self) -> list[Row]:
        return [row for r in self.results for row in r.rows]

    def failures(self) -> list[ImageResult]:
        return [r for r in self.results if r.error is not None]

    def write_tables(self) -> None:
        """``results.csv`` and ``summary.md`` for the images done so far (atomic rewrites)."""
        with atomic_open(self.out_dir / "results.csv", "w") as f:
            writer = csv.writer(f)
            writer.writerow([fl.name for fl in fields(Row)])
            for row in self.rows():
                d = asdict(row)
                writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in d.values()])
        with atomic_open(self.out_dir / "summary.md", "w") as f:
            f.write(summary_markdown(self.rows(), list(self.methods), self.model.name, self.failures()))


def save_figure(path: Path, fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    with atomic_open(path) as f:
        f.write(buf.getvalue())
