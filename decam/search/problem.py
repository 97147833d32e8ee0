"""DE-CAM's optimization problem as a vectorized evotorch ``Problem``: the fitness, and nothing else.

fitness(genome) = logit_target(fill + M ⊙ (X − fill)) − α · mean(M),   M = encoding.render(genome)

``fill`` may hold several images ``(F, 3, H, W)``: the population is split into F contiguous parts,
part f filled with fill f (an individual keeps its fill from one generation to the next).

With several targets, every query keeps the scores of all of them (for the aggregator) and the
fitness rewards the first target (``reward="first"``) or the mean over all (``reward="mean"``).
"""

from __future__ import annotations

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
from decam.models.runner import ModelRunner

Observer = Callable[[torch.Tensor, dict[str, torch.Tensor]], None]
"""``observer(masks (N, H, W), scores)``: sees every evaluated batch. ``logit``, ``probability`` and
``fitness`` are ``(N,)`` (the first target's); ``logits`` and ``probabilities`` are ``(N, T)``, one
column per target."""


class SaliencyProblem(Problem):
    """Maximize the target logit (or probability) of the masked image minus ``alpha`` × the kept area.

    The population is rendered at once and composed chunk by chunk into channels_last batches for
    ``runner`` (a :class:`~decam.models.ModelRunner`: it chunks, checks and counts the queries).
    Only initial bounds are declared: encodings make any real genome valid. Beside each fitness
    the evaluation data holds the mask's area, the target logit and its probability.
    """

    def __init__(
        self,
        runner: ModelRunner | Callable[[torch.Tensor], torch.Tensor],
        image: torch.Tensor,
        target: int | list[int],
        encoding: Encoding,
        *,
        fill: torch.Tensor | None = None,
        alpha: float = 1.0,
        objective: str = "logit",
        reward: str = "first",
        channels_last: bool = True,
        seed: int | None = None,
        observer: Observer | None = None,
        profile: bool = False,
    ) -> None:
        if objective not in ("logit", "probability"):
            raise ValueError(f"objective={objective!r}: expected logit or probability")
        if reward not in ("first", "mean"):
            raise ValueError(f"reward={reward!r}: expected first or mean")
        self.runner = runner if isinstance(runner, ModelRunner) else ModelRunner(runner)
        self.targets = [int(t) for t in (target if isinstance(target, (list, tuple)) else [target])]
        self.target, self.reward, self.encoding, self.image = self.targets[0], reward, encoding, image
        fill = torch.zeros_like(image) if fill is None else fill.to(image)
        fills = fill if fill.ndim == 4 else fill[None]
        # composed in (H, W, 3) order so a batch comes out channels_last without a copy
        self.fill_hwc = fills.permute(0, 2, 3, 1).contiguous()
        self.delta_hwc = (image[None] - fills).permute(0, 2, 3, 1).contiguous()
        self.alpha, self.objective, self.observer = float(alpha), objective, observer
        self.channels_last, self.profile = channels_last, profile
        self.seconds = {"render": 0.0, "compose": 0.0, "forward": 0.0}
        """Time spent per stage of the hot path (device-synchronized when ``profile``)."""
        lo, hi = encoding.initial_bounds
        super().__init__("max", solution_length=encoding.genome_length, initial_bounds=(lo, hi),
                         dtype=torch.float32, device=image.device, seed=seed,
                         eval_data_length=3)  # mask area, target logit, target probability

    @property
    def queries(self) -> int:
        """Images sent to the model so far."""
        return self.runner.queries

    def _tick(self, stage: str, since: float) -> float:
        if self.profile and self.image.device.type == "cuda":
            torch.cuda.synchronize(self.image.device)
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now

    def compose(self, masks: torch.Tensor, fills: torch.Tensor | None = None) -> torch.Tensor:
        """Masked images ``fill + M ⊙ (X − fill)``, ``(N, 3, H, W)`` in channels_last layout; ``fills``
        ``(N,)`` says which fill each mask takes, in runs (default: the first)."""
        if self.fill_hwc.shape[0] == 1 or fills is None:
            x = torch.addcmul(self.fill_hwc[0], masks.unsqueeze(-1), self.delta_hwc[0])  # (N, H, W, 3)
        else:
            x = masks.new_empty(*masks.shape, 3)
            for f in fills.unique().tolist():
                rows = (fills == f).nonzero().flatten()
                part = slice(int(rows[0]), int(rows[-1]) + 1)
                torch.addcmul(self.fill_hwc[f], masks[part].unsqueeze(-1), self.delta_hwc[f], out=x[part])
        x = x.permute(0, 3, 1, 2)
        return x if self.channels_last else x.contiguous()

    def score(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets' logits and softmax probabilities for each mask ``(N, H, W)``: two ``(N, T)`` float32 tensors."""
        logit, prob = [], []
        targets = torch.tensor(self.targets, device=masks.device)
        fills = torch.arange(masks.shape[0], device=masks.device) * self.fill_hwc.shape[0] // masks.shape[0]
        with torch.inference_mode():
            for m, f in zip(masks.split(self.runner.batch_size), fills.split(self.runner.batch_size)):
                t = time.perf_counter()
                x = self.compose(m, f)
                t = self._tick("compose", t)
                out = self.runner(x)
                if max(self.targets) >= out.shape[1]:
                    raise ModelOutputError(f"target {max(self.targets)} is outside the model's {out.shape[1]} classes")
                logit.append(out[:, targets])
                prob.append(out.softmax(dim=1)[:, targets])
                self._tick("forward", t)
        return torch.cat(logit), torch.cat(prob)

    def _evaluate_batch(self, batch: SolutionBatch) -> None:
        genomes = batch.values.as_subclass(torch.Tensor)  # evotorch hands out read-only tensors
        t = time.perf_counter()
        with torch.inference_mode():
            masks = self.encoding.render(genomes)
        self._tick("render", t)
        area = masks.mean(dim=(1, 2))
        logits, probs = self.score(masks)
        rewarded = logits if self.objective == "logit" else probs
        rewarded = rewarded[:, 0] if self.reward == "first" else rewarded.mean(dim=1)
        fitness = rewarded - self.alpha * area
        logit, prob = logits[:, 0], probs[:, 0]
        if self.observer is not None:
            self.observer(masks, {"logit": logit, "probability": prob, "fitness": fitness,
                                  "logits": logits, "probabilities": probs})
        batch.set_evals(fitness, torch.stack([area, logit, prob], dim=1))
