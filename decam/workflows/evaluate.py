"""``decam evaluate``: score explanation methods on the same images, targets and metric, and write it all.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from decam.evaluation.methods import Method
from decam.evaluation.metrics import CurveScores
from decam.evaluation.scoring import (ImageResult, ImageScorer, ImageScores, Row, build_methods, read_labels,
                                      split_method_options)
from decam.evaluation.tables import summary_markdown
from decam.io import atomic_open, save_npy
from decam.io.outputs import unique_stem
from decam.models import LoadedModel, ModelRunner

__all__ = ["Evaluation", "ImageResult", "ImageScores", "Row", "build_methods", "evaluation_spec", "read_labels",
           "split_method_options"]


def evaluation_spec(config, methods: Sequence[str], options: dict[str, dict] | None = None,
                    labels: dict[str, int] | None = None) -> str:
    """Everything :meth:`Evaluation.from_spec` needs, as one JSON string (a Ray worker rebuilds the
    Evaluation from it): the decam config, which holds the model, the methods, their options and the labels."""
    from omegaconf import OmegaConf

    return json.dumps({"config": OmegaConf.to_container(config), "methods": list(methods),
                       "options": options or {}, "labels": labels}, sort_keys=True)



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
    ) -> None:
        super().__init__(model, methods, labels=labels, runner=runner, device=device)
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
        methods = build_methods(spec["methods"], model, cfg, spec["options"], runner)
        return cls(model, methods, out_dir, labels=spec["labels"], runner=runner, device=cfg.device,
                   gallery_rows=gallery_rows)

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
