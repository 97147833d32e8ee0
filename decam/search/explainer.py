"""Explainer / Explanation: the one place that wires model, encoding, problem, searcher and aggregator."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from decam.config import load_config, plugin_kwargs
from decam.search.batching import SharedForward
from decam.errors import ConfigError, InputError, ModelOutputError
from decam.io.images import fill_image, open_image, to_input
from decam.models import (LoadedModel, from_callable, load_model, resolve_precision, search_forward,
                          tune_allocator)
from decam.search.problem import SaliencyProblem
from decam.registry import AGGREGATORS, ENCODINGS, SEARCHERS


@dataclass
class Explanation:
    """A saliency map and how it was found."""

    saliency: np.ndarray
    """``(H, W)`` float32 in [0, 1] at the model's input size."""
    target: int
    class_name: str
    score: float
    """Target logit on the unmasked image."""
    probability: float
    queries: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    """Per generation: ``generation``, ``best``, ``mean``, ``median``, ``best_area``, ``queries``."""
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    """Seconds per stage of the search: ``render``, ``compose``, ``forward``, ``searcher`` (the rest)."""
    image: torch.Tensor | None = field(default=None, repr=False)
    """The model input that was explained, ``(3, H, W)``."""


@lru_cache(maxsize=4)
def _cached_model(name: str, weights: str | None) -> LoadedModel:
    return load_model(name, weights)


def overrides_from_kwargs(**kwargs: Any) -> list[str]:
    """Python keyword overrides → ``key=value`` strings; a dict value is a section, ``None`` is null."""
    out = []
    for key, value in kwargs.items():
        if isinstance(value, dict):
            out += overrides_from_kwargs(**{f"{key}.{k}": v for k, v in value.items()})
        else:
            out.append(f"{key}={'null' if value is None else value}")
    return out


class Explainer:
    """Built once from a model and a config; ``explain`` is called per image (construction vs call)."""

    def __init__(self, model: str | Callable | LoadedModel | None = None, config: DictConfig | None = None) -> None:
        self.config = config if config is not None else load_config()
        tune_allocator()
        if model is None or isinstance(model, str):
            model = _cached_model(model or self.config.model, self.config.weights)
        self.model = from_callable(model)
        self.device = torch.device(self.config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device={self.config.device}: no CUDA device is available")
        self.precision = resolve_precision(self.config.precision, self.device)
        self.actors = int(self.config.get("actors", 0))
        if self.actors and self.model.source is None:
            raise ConfigError(f"actors={self.actors}: each actor loads the model itself, so give it by name (a "
                              "registered name, torchvision:<arch> or package.module:function), not as a Python object")
        self._search_forward = search_forward(self.model, self.device, fold=self.config.fold_batchnorm,
                                              compile=self.config.compile)

    def prepare(self, image: str | Path | Image.Image | torch.Tensor) -> torch.Tensor:
        """A path, PIL image or tensor → model input ``(3, H, W)`` on the explainer's device."""
        if isinstance(image, (str, Path)):
            image = open_image(image)
        if isinstance(image, Image.Image):
            image = to_input(image.convert("RGB"), self.model.input_size, self.model.resize)
        if not isinstance(image, torch.Tensor):
            raise InputError(f"image must be a path, a PIL image or a tensor, got {type(image).__name__}")
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim != 3 or image.shape[0] != 3:
            raise InputError(f"image tensor has shape {tuple(image.shape)}; expected (3, H, W)")
        if not torch.isfinite(image).all():
            raise InputError("image tensor contains NaN or infinite values")
        return image.detach().float().to(self.device)

    def explain(
        self,
        image: str | Path | Image.Image | torch.Tensor,
        target: int | None = None,
        progress: Callable[[dict], None] | None = None,
    ) -> Explanation:
        """Search masks for ``target`` (default: the model's top-1 class) and aggregate them.

        ``progress`` is called after every generation with that generation's history entry.
        """
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if self.config.seed is not None:
                torch.manual_seed(self.config.seed)
            return self._explain(image, target, progress, self._search_forward)

    def explain_many(
        self,
        images: list,
        targets: list[int | None] | None = None,
        images_per_batch: int | None = None,
        progress: Callable[[int, dict], None] | None = None,
    ) -> Iterator[tuple[int, Explanation | Exception]]:
        """Explain several images, running ``images_per_batch`` searches at once so their
        populations share the model's batches (default: as many as fill ``batch_size``).

        Yields ``(index, Explanation)`` — or ``(index, exception)`` for an image that failed (a
        :class:`~decam.errors.DecamError` for bad input or a failing model) — in input order.
        Searches draw randomness only from their own seeded generators, so maps are reproducible;
        they may differ in the last bits from ``explain`` (other batch sizes).
        """
        targets = targets if targets is not None else [None] * len(images)
        popsize = int(self.config.searcher.get("popsize") or self.config.batch_size)
        group = images_per_batch or max(1, self.config.batch_size // max(popsize, 1))
        if self.actors:  # the actors share one search's batches instead
            group = 1
        for first in range(0, len(images), group):
            idx = list(range(first, min(first + group, len(images))))
            shared = SharedForward(self._search_forward, self._autocast)
            for i in idx:
                shared.join(i)

            def run(i: int) -> Explanation | Exception:
                try:
                    tick = (lambda entry: progress(i, entry)) if progress else None
                    return self._explain(images[i], targets[i], tick, shared.bind(i))
                except Exception as e:  # reported per image; the others go on
                    return e
                finally:
                    shared.leave(i)

            with ThreadPoolExecutor(max_workers=len(idx)) as pool:
                results = list(pool.map(run, idx))
            yield from zip(idx, results)

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _explain(self, image, target, progress, forward) -> Explanation:
        cfg = self.config
        start = time.perf_counter()
        x = self.prepare(image)
        logits = self._logits(x)
        if target is None:
            target = int(logits.argmax())
        if not 0 <= int(target) < logits.numel():
            raise InputError(f"target {target} is outside the model's {logits.numel()} classes (0..{logits.numel() - 1})")
        search_start = time.perf_counter()
        saliency, problem, history = self._search(x, int(target), progress, forward)
        timings = dict(problem.seconds)
        timings["searcher"] = time.perf_counter() - search_start - sum(timings.values())
        return Explanation(
            saliency=saliency.float().cpu().numpy().astype(np.float32),
            target=int(target),
            class_name=self.model.class_name(int(target)),
            score=float(logits[target]),
            probability=float(logits.float().softmax(-1)[target]),
            queries=problem.queries + 1,
            seconds=time.perf_counter() - start,
            history=history,
            config=OmegaConf.to_container(cfg),
            timings=timings,
            image=x.cpu(),
        )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            try:
                out = self.model.forward(x.unsqueeze(0))
            except Exception as e:  # the model is a black box: any failure is the model's
                raise ModelOutputError(f"model raised {type(e).__name__}: {e}") from e
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelOutputError(f"model returned {shape} for one image; expected logits (1, C)")
        if not torch.isfinite(out).all():
            raise ModelOutputError("model returned NaN or infinite logits on the unmasked image")
        return out[0].float()

    def _search(self, x: torch.Tensor, target: int, progress, forward) -> tuple[torch.Tensor, SaliencyProblem, list[dict]]:
        cfg = self.config
        encoding = ENCODINGS[cfg.encoding.name](**plugin_kwargs(cfg.encoding)).bind(x)
        aggregator = AGGREGATORS[cfg.aggregator.name](**plugin_kwargs(cfg.aggregator))
        problem = SaliencyProblem(
            forward,
            x,
            target,
            encoding,
            fill=fill_image(x, cfg.fill),
            alpha=cfg.alpha,
            objective=cfg.objective,
            batch_size=cfg.batch_size,
            precision=self.precision,
            channels_last=self.model.module is not None,
            seed=cfg.seed,
            observer=aggregator.observe,
            **self._actor_options(),
        )
        try:
            return self._run_search(problem, encoding, aggregator, progress)
        finally:
            if problem.actors is not None:
                problem.kill_actors()

    def _actor_options(self) -> dict:
        """SaliencyProblem's arguments for ``actors`` (Ray connected first: decam.distributed.connect)."""
        if not self.actors:
            return {}
        from decam.distributed.cluster import connect

        connect()
        return {"actors": self.actors, "gpus_per_actor": float(self.config.get("gpus_per_actor", 0.0)),
                "model_source": self.model.source, "fold_batchnorm": bool(self.config.fold_batchnorm)}

    def _run_search(self, problem: SaliencyProblem, encoding, aggregator,
                    progress) -> tuple[torch.Tensor, SaliencyProblem, list[dict]]:
        cfg = self.config
        searcher = SEARCHERS[cfg.searcher.name](problem, **plugin_kwargs(cfg.searcher))
        history: list[dict] = []
        generation, last_cost = 0, 0
        while True:
            if cfg.budget is None and generation >= cfg.generations:
                break
            if cfg.budget is not None and problem.queries + max(last_cost, 1) > cfg.budget and generation > 0:
                break
            before = problem.queries
            searcher.step()
            generation += 1
            last_cost = problem.queries - before
            history.append(_summary(generation, searcher.population, problem.queries))
            if progress is not None:
                progress(history[-1])
        pop = searcher.population
        with torch.inference_mode():
            masks = encoding.render(pop.values.as_subclass(torch.Tensor))
        return aggregator.finalize(masks, pop.evals[:, 0]), problem, history


def _summary(generation: int, population, queries: int) -> dict:
    evals = population.evals
    fitness = evals[:, 0]
    best = int(fitness.argmax())
    return {
        "generation": generation,
        "best": float(fitness[best]),
        "mean": float(fitness.mean()),
        "median": float(fitness.median()),
        "best_area": float(evals[best, 1]) if evals.shape[1] > 1 else float("nan"),
        "queries": queries,
    }


def explain(
    model: str | Callable | LoadedModel,
    image: str | Path | Image.Image | torch.Tensor,
    target: int | None = None,
    *,
    seed: int | None = None,
    popsize: int | None = None,
    generations: int | None = None,
    config: str | Path | None = None,
    **overrides: Any,
) -> Explanation:
    """Explain ``model``'s decision on ``image`` with DE-CAM.

    ``model``: a registered name (``"efficientnet_lite0"``, ``"torchvision:resnet50"``) or any
    callable ``Tensor[B,3,H,W] → Tensor[B,C]`` of logits (a tensor ``image`` is passed to it as
    given). ``overrides`` are config keys, e.g. ``alpha=2``, ``encoding="rectangles"``,
    ``searcher={"CR": 0.5}`` or ``**{"encoding.K": 12}``.
    """
    if seed is not None:
        overrides["seed"] = seed
    if generations is not None:
        overrides["generations"] = generations
    if popsize is not None:
        overrides["searcher.popsize"] = popsize
    if isinstance(model, str):
        overrides["model"] = model
    cfg = load_config(config, overrides_from_kwargs(**overrides))
    return Explainer(model if not isinstance(model, str) else None, cfg).explain(image, target)
