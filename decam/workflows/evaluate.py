"""``decam evaluate``: score explanation methods on the same images, targets and metrics, and write it all.

Per image and method it records insertion, deletion and DiffAUC with the substrates named, the rest of the
metric suite (swapped-substrate DiffAUC, MuFidelity, ROAD by default; sanity checks and stability when
asked), seconds and model queries, and writes into the output folder: ``results.csv`` (one row per image
and method, AUCs in [0, 1]), ``summary.md`` (×100 like the paper's Table 1, with paired differences against
decam for every metric), ``curves/<stem>.png`` (the curves of every method),
``gallery.png`` (photo | each method's map) and ``maps/<stem>/<method>.npy`` (float32 at the model's
input size, the exact maps that were scored). An image that fails (unreadable, no label, a method
error) is reported and left out of every table, so all methods are compared on the same images.

``targets`` (``--targets top3`` or ``3,17``, :mod:`decam.workflows.evaluate_targets`) explains every
image for several classes: decam finds all their maps with ONE search, every other method runs once
per class, and each class gives its own rows (column ``rank``: 1 = the searched class) — the shared
search's seconds and queries are on decam's rank-1 row and 0 on its other rows
(:mod:`decam.evaluation.scoring`). The maps are then ``maps/<stem>/<method>.<class>.npy``, the curves
``curves/<stem>.<class>.png``, the gallery shows the first class, and ``summary.md`` has its tables for
the searched class and for the others.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from decam.evaluation.building import MethodBuilder, build_methods, split_method_options
from decam.evaluation.methods import Method
from decam.evaluation.metrics.suite import MetricSettings
from decam.evaluation.scoring import ClassMaps, ImageResult, ImageScorer, ImageScores, Row, read_labels
from decam.evaluation.tables import summary_markdown
from decam.io import atomic_open, save_npy
from decam.io.outputs import unique_stem
from decam.models import LoadedModel, ModelRunner

__all__ = ["Evaluation", "ImageResult", "ImageScores", "MethodBuilder", "MetricSettings", "Row", "build_methods",
           "evaluation_spec", "read_labels", "split_method_options"]


def evaluation_spec(config, methods: Sequence[str], options: dict[str, dict] | None = None,
                    labels: dict[str, int] | None = None, metrics: MetricSettings | None = None,
                    targets: str | None = None) -> str:
    """Everything :meth:`Evaluation.from_spec` needs, as one JSON string (a Ray worker rebuilds the
    Evaluation from it): the decam config, which holds the model, the methods, their options, the labels,
    the metric settings (substrates included) and the ``targets`` spec (None: one class per image)."""
    from omegaconf import OmegaConf

    return json.dumps({"config": OmegaConf.to_container(config), "methods": list(methods),
                       "options": options or {}, "labels": labels,
                       "metrics": (metrics or MetricSettings()).to_dict(), "targets": targets}, sort_keys=True)


class Evaluation(ImageScorer):
    """Built once from a model and named methods; ``run(images)`` scores every method on every image
    and keeps the output folder up to date after each."""

    def __init__(
        self,
        model: LoadedModel,
        methods: dict[str, Method],
        out_dir: str | Path,
        *,
        labels: dict[str, int] | None = None,
        runner: ModelRunner | None = None,
        device: str | torch.device = "cpu",
        gallery_rows: int = 8,
        settings: MetricSettings | None = None,
        builder: MethodBuilder | None = None,
        targets: str | None = None,
    ) -> None:
        from decam.workflows.evaluate_targets import target_chooser

        super().__init__(model, methods, labels=labels, runner=runner, device=device, settings=settings,
                         builder=builder, choose=target_chooser(targets, labels is not None))
        self.targets = targets
        self.out_dir, self.gallery_rows = Path(out_dir), gallery_rows
        self.results: list[ImageResult] = []
        self._gallery: list[tuple[str, torch.Tensor, dict[str, np.ndarray]]] = []
        self._used_stems: set[str] = set()

    @classmethod
    def from_spec(cls, spec: str, out_dir: str | Path = ".", gallery_rows: int = 8,
                  device: str | None = None) -> Evaluation:
        """Load the model and build the methods an :func:`evaluation_spec` describes. ``device``
        overrides the config's (the driver of a Ray run, which only writes, stays on the CPU)."""
        from omegaconf import OmegaConf

        from decam.models import FastForward, load_model, tune_allocator

        spec = json.loads(spec)
        cfg = OmegaConf.create(spec["config"])
        if device is not None:
            cfg.device = device
        tune_allocator()
        model = load_model(cfg.model, cfg.weights, cfg.get("model_options"))
        fast = FastForward(model, cfg.device, cfg.precision, fold=cfg.fold_batchnorm, compile=cfg.compile)
        runner = ModelRunner(fast, cfg.batch_size)
        builder = MethodBuilder(model, cfg, spec["options"], runner, device=cfg.device, precision=cfg.precision,
                                fold=cfg.fold_batchnorm)
        return cls(model, builder.build_all(spec["methods"]), out_dir, labels=spec["labels"], runner=runner,
                   device=cfg.device, gallery_rows=gallery_rows,
                   settings=MetricSettings.from_dict(spec.get("metrics")), builder=builder,
                   targets=spec.get("targets"))

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

    def record(self, scored: ImageScores) -> ImageResult:
        """Keep one image's outcome: its maps, curves and gallery row, then the tables rewritten."""
        result = scored.result
        if result.error is None:
            self.write_image_outputs(result.stem, scored.x, scored.classes)
            if len(self._gallery) < self.gallery_rows:
                self._gallery.append((result.stem, scored.x, scored.maps))
        self.results.append(result)
        self.write_tables()
        return result

    def write_image_outputs(self, stem: str, x: torch.Tensor, classes: list[ClassMaps]) -> None:
        """Every map of one image and one curves figure per class (named by class when there are several)."""
        from decam.evaluation.figures import curves_figure

        for cls in classes:
            suffix = f".{cls.target}" if len(classes) > 1 else ""
            for method, sal in cls.maps.items():
                save_npy(self.out_dir / "maps" / stem / f"{method}{suffix}.npy", sal)
            swapped = {m: s.swapped for m, s in cls.scores.items() if s.swapped is not None}
            curves = {m: s.curves for m, s in cls.scores.items()}
            save_figure(self.out_dir / "curves" / f"{stem}{suffix}.png",
                        curves_figure(stem, cls.class_name, curves, swapped or None))

    def rows(self) -> list[Row]:
        return [row for r in self.results for row in r.rows]

    def failures(self) -> list[ImageResult]:
        return [r for r in self.results if r.error is not None]

    def write_tables(self) -> None:
        """``results.csv`` and ``summary.md`` for the images done so far (atomic rewrites); the ``rank``
        column only with ``targets`` (several classes per image)."""
        keys = [c.key for c in self.columns]
        with atomic_open(self.out_dir / "results.csv", "w") as f:
            writer = csv.writer(f)
            fixed = [k for k in Row.__dataclass_fields__ if k != "scores" and (k != "rank" or self.targets)]
            rows = [{k: v for k, v in row.record(keys).items() if k in fixed or k in keys} for row in self.rows()]
            writer.writerow(list(rows[0]) if rows else fixed + keys)
            for rec in rows:
                writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in rec.values()])
        with atomic_open(self.out_dir / "summary.md", "w") as f:
            f.write(summary_markdown(self.rows(), list(self.methods), self.model.name, self.failures(),
                                     columns=self.columns, substrates=self.suite.describe()))


def save_figure(path: Path, fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    with atomic_open(path) as f:
        f.write(buf.getvalue())
