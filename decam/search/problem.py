"""DE-CAM's optimization problem as a vectorized evotorch ``Problem``.

fitness(genome) = logit_target(fill + M ⊙ (X − fill)) − α · mean(M),   M = encoding.render(genome)
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable

import torch

with warnings.catch_warnings():  # evotorch 0.6.1 calls the deprecated torch.jit.script at import
    warnings.simplefilter("ignore", FutureWarning)
    from evotorch import Problem, SolutionBatch

logging.getLogger("evotorch").setLevel(logging.WARNING)  # evotorch logs every Problem it builds at INFO

from decam.encodings.base import Encoding
from decam.errors import ModelOutputError


class SaliencyProblem(Problem):
    """Maximize the target logit (or probability) of the masked image minus ``alpha`` × the kept area.

    The whole population is rendered and composed at once; the model runs in chunks of
    ``batch_size`` under ``torch.inference_mode()``. ``queries`` counts the images sent to the model.
    ``observer(masks, scores)`` sees every evaluated batch (scores: ``logit``, ``probability``, ``fitness``).
    Only initial bounds are declared: encodings make any real genome valid. Beside each fitness the
    evaluation data holds the mask's area, the target logit and its probability.

    ``actors`` ≥ 2 spreads each batch over that many Ray actors (evotorch's ``num_actors``; the image
    and population stay on the CPU). The problem travels to the actors without its model: each
    actor loads it once from ``model_source`` (``(name, weights)`` for :func:`~decam.models.load_model`)
    in evotorch's ``_prepare`` hook, on a GPU when ``gpus_per_actor`` > 0. The observer, the query
    count and the timings stay in this process (masks are rendered again here for the observer).
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        image: torch.Tensor,
        target: int,
        encoding: Encoding,
        *,
        fill: torch.Tensor | None = None,
        alpha: float = 1.0,
        batch_size: int = 64,
        precision: str = "fp32",
        channels_last: bool = True,
        seed: int | None = None,
        objective: str = "logit",
        observer: Callable[[torch.Tensor, dict[str, torch.Tensor]], None] | None = None,
        profile: bool = False,
        actors: int = 0,
        gpus_per_actor: float = 0.0,
        model_source: tuple[str, str | None] | None = None,
        fold_batchnorm: bool = True,
    ) -> None:
        if actors and model_source is None:
            raise ValueError("actors need model_source, the (name, weights) each actor loads the model from")
        self.model_source, self.gpus_per_actor = model_source, float(gpus_per_actor)
        self.fold_batchnorm = fold_batchnorm  # for the model an actor loads (decam.models.folding)
        self.forward, self.target, self.encoding = forward, int(target), encoding
        self.image = image
        fill = torch.zeros_like(image) if fill is None else fill.to(image)
        # composed in (H, W, 3) order so a batch comes out channels_last without a copy
        self.fill_hwc = fill.permute(1, 2, 0).contiguous()
        self.delta_hwc = (image - fill).permute(1, 2, 0).contiguous()
        self.alpha, self.batch_size = float(alpha), int(batch_size)
        self.precision, self.channels_last = precision, channels_last
        if objective not in ("logit", "probability"):
            raise ValueError(f"objective={objective!r}: expected logit or probability")
        self.objective, self.observer = objective, observer
        self.queries = 0
        self.seconds = {"render": 0.0, "compose": 0.0, "forward": 0.0}
        """Time spent per stage of the hot path (device-synchronized when ``profile``)."""
        self.profile = profile
        lo, hi = encoding.initial_bounds
        super().__init__(
            "max",
            solution_length=encoding.genome_length,
            initial_bounds=(lo, hi),
            dtype=torch.float32,
            device=image.device,
            eval_data_length=3,  # mask area, target logit, target probability
            seed=seed,
            num_actors=actors,
            num_gpus_per_actor=self.gpus_per_actor or None,
        )

    @property
    def _nonserialized_attribs(self) -> list[str]:
        # what stays behind when evotorch ships the problem to its actors: the model (each actor
        # loads its own in _prepare) and the observer (fed here, in _evaluate_all)
        return ["forward", "observer"] if self.num_actors else []

    def seed(self, value: int) -> None:
        """What evotorch 0.6.1's actors call on a problem with its own generator (Problem names it manual_seed)."""
        self.manual_seed(value)

    def _prepare(self) -> None:
        """evotorch's hook where the problem evaluates: an actor's copy loads the model here, once."""
        if self.forward is not None:
            return
        from decam.models import load_model, search_forward

        device = self.aux_device if self.gpus_per_actor > 0 else torch.device("cpu")
        self.forward = search_forward(load_model(*self.model_source), device, fold=self.fold_batchnorm)
        self.image, self.fill_hwc, self.delta_hwc = (t.to(device) for t in (self.image, self.fill_hwc, self.delta_hwc))

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.image.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _tick(self, stage: str, since: float) -> float:
        if self.profile and self.image.device.type == "cuda":
            torch.cuda.synchronize(self.image.device)
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def compose(self, masks: torch.Tensor) -> torch.Tensor:
        """Masked images ``fill + M ⊙ (X − fill)``, ``(N, 3, H, W)`` in channels_last layout."""
        x = torch.addcmul(self.fill_hwc, masks.unsqueeze(-1), self.delta_hwc)  # (N, H, W, 3)
        x = x.permute(0, 3, 1, 2)
        return x if self.channels_last else x.contiguous()

    def score(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target logit and softmax probability for each mask ``(N, H, W)``: two ``(N,)`` float32 tensors."""
        logit, prob = [], []
        with torch.inference_mode(), self._autocast():
            for m in masks.split(self.batch_size):
                t = time.perf_counter()
                x = self.compose(m)
                t = self._tick("compose", t)
                try:
                    out = self.forward(x)
                except Exception as e:  # the model is a black box: any failure is the model's
                    raise ModelOutputError(f"model raised {type(e).__name__}: {e}") from e
                self.queries += x.shape[0]
                out = self._check(out, x.shape[0]).float()
                logit.append(out[:, self.target])
                prob.append(out.softmax(dim=1)[:, self.target])
                self._tick("forward", t)
        return torch.cat(logit), torch.cat(prob)

    def _check(self, logits: object, n: int) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != n:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ModelOutputError(f"model returned {shape} for a batch of {n} images; expected logits (B, C)")
        if self.target >= logits.shape[1]:
            raise ModelOutputError(f"target {self.target} is outside the model's {logits.shape[1]} classes")
        if not torch.isfinite(logits).all():
            raise ModelOutputError("model returned NaN or infinite logits")
        return logits

    def _evaluate_batch(self, batch: SolutionBatch) -> None:
        genomes = batch.values.as_subclass(torch.Tensor)  # evotorch hands out read-only tensors
        t = time.perf_counter()
        with torch.inference_mode():
            masks = self.encoding.render(genomes).to(self.delta_hwc.device)  # an actor's GPU, if it has one
        self._tick("render", t)
        area = masks.mean(dim=(1, 2))
        logit, prob = self.score(masks)
        fitness = (logit if self.objective == "logit" else prob) - self.alpha * area
        if self.observer is not None:
            self.observer(masks, {"logit": logit, "probability": prob, "fitness": fitness})
        device = batch.values.device
        batch.set_evals(fitness.to(device), torch.stack([area, logit, prob], dim=1).to(device))

    def _evaluate_all(self, batch: SolutionBatch) -> None:
        if self.actors is None:  # evaluated right here (no actors, or this is an actor's copy)
            super()._evaluate_all(batch)
            return
        t = time.perf_counter()
        super()._evaluate_all(batch)  # each actor evaluates a piece; the evaluation data comes back with it
        t = self._tick("forward", t)
        self.queries += len(batch)
        if self.observer is not None:
            with torch.inference_mode():
                masks = self.encoding.render(batch.values.as_subclass(torch.Tensor))
            self._tick("render", t)
            evals = batch.evals.as_subclass(torch.Tensor)
            self.observer(masks, {"logit": evals[:, 2], "probability": evals[:, 3], "fitness": evals[:, 0]})
