"""Explainer: the one place that wires model, encoding, problem, searcher and aggregator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from decam.config import config_from_kwargs, load_config, plugin_kwargs
from decam.errors import ConfigError, InputError
from decam.io.images import open_image, to_input
from decam.models import (FastForward, ForwardSpec, LoadedModel, ModelRunner, from_callable, load_model,
                          remote_counters, tune_allocator)
from decam.registry import AGGREGATORS, ENCODINGS, SEARCHERS
from decam.search.batching import SharedForward
from decam.search.checkpoint import Checkpoint, fingerprint, rng_state, set_rng_state, supports_checkpoints
from decam.search.engine import SearchLog, StopRule, run_search
from decam.search.explanation import Explanation, TargetMap
from decam.search.targets import TargetSpec, resolve_targets
from decam.search.problem import SaliencyProblem
from decam.substrates import fill_image

__all__ = ["Explainer", "Explanation", "explain"]


def _cached_model(name: str, weights: str | None, options: str = "{}") -> LoadedModel:
    return _loaded(name, weights, options)  # one cache key whether options are given or not


@lru_cache(maxsize=4)
def _loaded(name: str, weights: str | None, options: str) -> LoadedModel:
    return load_model(name, weights, json.loads(options))  # options: model_options as JSON (hashable)


class Explainer:
    """Built once from a model and a config; ``explain`` is called per image (construction vs call).

    The search queries the model through one :class:`~decam.models.FastForward` (or, with
    ``actors``, a pool of Ray actors each holding a copy), built here once.
    """

    def __init__(self, model: str | Callable | LoadedModel | None = None, config: DictConfig | None = None) -> None:
        self.config = config if config is not None else load_config()
        tune_allocator()
        if model is None or isinstance(model, str):
            options = json.dumps(OmegaConf.to_container(OmegaConf.create(self.config.get("model_options") or {})),
                                 sort_keys=True)
            model = _cached_model(model or self.config.model, self.config.weights, options)
        self.model = from_callable(model)
        self.device = torch.device(self.config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device={self.config.device}: no CUDA device is available")
        self.forward = FastForward(self.model, self.device, self.config.precision,
                                   fold=self.config.fold_batchnorm, compile=self.config.compile)
        self.precision = self.forward.precision
        self.pool = None
        if self.config.actors:
            if self.model.source is None:
                raise ConfigError(f"actors={self.config.actors}: each actor loads the model itself, so give it by "
                                  "name (a registered name, torchvision:<arch> or package.module:function), not as a "
                                  "Python object")
            from decam.distributed.actors import ActorPool

            spec = ForwardSpec(self.model.source, self.precision, self.config.fold_batchnorm, self.config.compile)
            self.pool = ActorPool(spec, self.config.actors, self.config.gpus_per_actor)

    @property
    def search_forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What the searches send their batches to: the actor pool, else the fast forward."""
        return self.pool if self.pool is not None else self.forward

    def close(self) -> None:
        """Release the Ray actors, if any (they also end with this process)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None

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
        target: TargetSpec = None,
        progress: Callable[[dict], None] | None = None,
        checkpoint: str | Path | None = None,
    ) -> Explanation:
        """Search masks for ``target`` (default: the model's top-1 class) and aggregate them.

        ``target`` may name several classes (``[3, 17]``, ``"3,17"``, ``"top3"``): one search, one map
        per class in ``Explanation.targets``. ``progress`` is called after every generation with
        that generation's history entry. ``checkpoint``: a file the search's state is saved to after
        every generation and continued from when it holds this search (decam.search.checkpoint);
        the caller removes it once the outputs are safe.
        """
        return self._seeded(image, target, progress, self.search_forward, checkpoint)

    def _seeded(self, image, target, progress, forward, checkpoint) -> Explanation:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if self.config.seed is not None:
                torch.manual_seed(self.config.seed)
            return self._explain(image, target, progress, forward, checkpoint)

    def explain_many(
        self,
        images: list,
        targets: list[TargetSpec] | None = None,
        images_per_batch: int | None = None,
        progress: Callable[[int, dict], None] | None = None,
        checkpoints: list[str | Path | None] | None = None,
    ) -> Iterator[tuple[int, Explanation | Exception]]:
        """Explain several images, running ``images_per_batch`` searches at once so their
        populations share the model's batches (default: as many as fill ``batch_size``).

        Yields ``(index, Explanation)`` — or ``(index, exception)`` for an image that failed (a
        :class:`~decam.errors.DecamError` for bad input or a failing model) — in input order.
        Searches draw randomness only from their own seeded generators, so maps are reproducible;
        they may differ in the last bits from ``explain`` (other batch sizes). ``checkpoints``: one
        file (or None) per image, as for :meth:`explain`.
        """
        targets = targets if targets is not None else [None] * len(images)
        checkpoints = checkpoints if checkpoints is not None else [None] * len(images)
        popsize = int(self.config.searcher.get("popsize") or self.config.batch_size)
        group = images_per_batch or max(1, self.config.batch_size // max(popsize, 1))
        for first in range(0, len(images), group):
            idx = list(range(first, min(first + group, len(images))))
            if len(idx) == 1:  # nothing to share: search in this thread
                i = idx[0]
                yield i, self._attempt(images[i], targets[i], progress, i, self.search_forward, checkpoints[i])
                continue
            shared = SharedForward(self.search_forward)
            for i in idx:
                shared.join(i)

            def run(i: int) -> Explanation | Exception:
                try:
                    return self._attempt(images[i], targets[i], progress, i, shared.bind(i), checkpoints[i])
                finally:
                    shared.leave(i)

            with ThreadPoolExecutor(max_workers=len(idx)) as pool:
                results = list(pool.map(run, idx))
            yield from zip(idx, results)

    def _attempt(self, image, target, progress, index: int, forward, checkpoint) -> Explanation | Exception:
        """One image of ``explain_many``: its explanation, or the exception that stopped it."""
        try:
            tick = (lambda entry: progress(index, entry)) if progress else None
            return self._explain(image, target, tick, forward, checkpoint)
        except Exception as e:  # reported per image; the others go on
            return e

    def _explain(self, image, target, progress, forward, checkpoint=None) -> Explanation:
        cfg = self.config
        start, remote = time.perf_counter(), remote_counters(self.model)
        x = self.prepare(image)
        saved = None
        if checkpoint is not None:
            checkpoint = Checkpoint(checkpoint, fingerprint(OmegaConf.to_container(cfg), x, target))
            saved = checkpoint.load()
        if saved is not None:  # paid for already
            logits = saved["logits"]
        else:
            logits = ModelRunner(self.model.forward, where="on the unmasked image")(x.unsqueeze(0))[0]  # fp32
        targets = resolve_targets(target, logits)
        search_start = time.perf_counter()
        maps, problem, history, stopped = self._search(x, targets, progress, forward, checkpoint, saved, logits)
        timings = dict(problem.seconds)
        timings["searcher"] = time.perf_counter() - search_start - sum(timings.values())
        probs = logits.softmax(-1)
        per_target = [TargetMap(t, self.model.class_name(t), float(logits[t]), float(probs[t]),
                                m.float().cpu().numpy().astype(np.float32)) for t, m in zip(targets, maps)]
        first = per_target[0]
        return Explanation(
            saliency=first.saliency, target=first.target, class_name=first.class_name, score=first.score,
            probability=first.probability, queries=problem.queries + 1, seconds=time.perf_counter() - start,
            history=history, config=OmegaConf.to_container(cfg), timings=timings, image=x.cpu(),
            targets=per_target, stopped=stopped,
            remote={k: v - remote[k] for k, v in remote_counters(self.model).items()},
        )

    def _search(self, x: torch.Tensor, targets: list[int], progress, forward, checkpoint=None, saved=None,
                logits=None):
        """Maps ``(T, H, W)`` for ``targets`` from one search, the problem, its history and why it stopped;
        continued from ``saved`` and saved to ``checkpoint`` after each generation when given."""
        cfg = self.config
        encoding = ENCODINGS[cfg.encoding.name](**plugin_kwargs(cfg.encoding)).bind(x)
        aggregator = AGGREGATORS[cfg.aggregator.name](**plugin_kwargs(cfg.aggregator))
        problem = SaliencyProblem(
            ModelRunner(forward, cfg.batch_size), x, targets, encoding,
            fill=fill_image(x, cfg.fill), alpha=cfg.alpha, objective=cfg.objective, reward=cfg.reward,
            channels_last=self.forward.channels_last, seed=cfg.seed, observer=aggregator.observe,
        )
        searcher = SEARCHERS[cfg.searcher.name](problem, **plugin_kwargs(cfg.searcher))

        def population_masks() -> torch.Tensor:
            with torch.inference_mode():
                return encoding.render(searcher.population.values.as_subclass(torch.Tensor))

        def estimate() -> torch.Tensor:
            return aggregator.estimate(population_masks, searcher.population.evals[:, 0])

        log, after = SearchLog(), None
        if checkpoint is not None and supports_checkpoints(searcher):
            if saved is not None:
                searcher.load_state_dict(saved["searcher"])
                aggregator.load_state_dict(saved["aggregator"])
                set_rng_state(problem, saved["rng"])
                problem.runner.queries = int(saved["queries"])
                log = SearchLog(saved["history"], saved["snapshots"], int(saved["settled"]))

            def save(log: SearchLog) -> None:
                checkpoint.save({"searcher": searcher.state_dict(), "aggregator": aggregator.state_dict(),
                                 "rng": rng_state(problem), "queries": problem.queries, "logits": logits,
                                 "history": log.history, "snapshots": log.snapshots, "settled": log.settled})

            after = save

        rule = StopRule(cfg.generations, cfg.budget, cfg.converge, cfg.min_generations)
        history, stopped = run_search(searcher, problem, rule, estimate=estimate, progress=progress, log=log,
                                      after_generation=after)
        maps = aggregator.finalize_all(population_masks(), searcher.population.evals[:, 0], len(targets))
        return maps, problem, history, stopped


def explain(
    model: str | Callable | LoadedModel,
    image: str | Path | Image.Image | torch.Tensor,
    target: TargetSpec = None,
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
    cfg = load_config(config, config_from_kwargs(**overrides))
    explainer = Explainer(model if not isinstance(model, str) else None, cfg)
    try:
        return explainer.explain(image, target)
    finally:
        explainer.close()
