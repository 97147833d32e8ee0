"""Which metrics an evaluation computes, with which substrates, and the report columns they fill.

A map is judged on the metrics it was not built to optimize: insertion / deletion with named substrates
(the RISE reference's by default), DiffAUC with the substrates swapped, MuFidelity and ROAD — and, opt-in
because they re-run the method, the sanity checks and stability over seeds.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from decam.errors import ConfigError
from decam.evaluation.metrics.curves import (N_STEPS, REFERENCE_DELETION, REFERENCE_INSERTION, CurveScores, Forward,
                                             insertion_deletion, resolve_normalization)
from decam.evaluation.metrics.fidelity import mu_fidelity
from decam.evaluation.metrics.road import PERCENTILES, RoadScores, road
from decam.evaluation.metrics.sanity import MapFn, cascading_randomization, random_class_test
from decam.evaluation.metrics.stability import stability
from decam.models import LoadedModel
from decam.substrates import SUBSTRATES, Normalization

METRICS = ("curves", "swapped", "mufidelity", "road", "sanity", "stability")
DEFAULT_METRICS = ("curves", "swapped", "mufidelity", "road")
RERUN_METRICS = ("sanity", "stability")
SWAPPED = ("black", "blur")
"""The swapped substrates: insertion from pixel black, deletion to the reference blur."""


@dataclass(frozen=True)
class Column:
    """One report column: its key in ``results.csv``, its label, which way is better, and its display scale."""

    key: str
    label: str
    higher_is_better: bool
    scale: float = 100.0
    digits: int = 1


def parse_metrics(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"default"``, ``"all"`` or a comma-separated list of :data:`METRICS` → the metrics in suite order;
    ``curves`` (insertion / deletion) is always computed. A ConfigError names an unknown one."""
    items = [text] if isinstance(text, str) else list(text or ["default"])
    names = {"curves"}
    for item in (s.strip() for part in items for s in part.split(",")):
        if item in ("", "default"):
            names |= set(DEFAULT_METRICS) if item == "default" else set()
        elif item == "all":
            names |= set(METRICS)
        elif item in METRICS:
            names.add(item)
        else:
            close = difflib.get_close_matches(item, [*METRICS, "all", "default"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown metric {item!r}{hint} (metrics: {', '.join(METRICS)}, all, default)")
    return tuple(m for m in METRICS if m in names)


@dataclass(frozen=True)
class MetricSettings:
    """Everything that decides a metric's value, recorded with every evaluation."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    insertion: str = REFERENCE_INSERTION
    deletion: str = REFERENCE_DELETION
    n_steps: int = N_STEPS
    mufidelity_grid: int = 9
    mufidelity_p: float = 0.2
    mufidelity_samples: int = 200
    road_percentiles: tuple[int, ...] = PERCENTILES
    sanity_blocks: int = 3
    stability_seeds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        object.__setattr__(self, "road_percentiles", tuple(self.road_percentiles))
        for kind in (self.insertion, self.deletion):
            if kind not in SUBSTRATES:
                raise ConfigError(f"unknown substrate {kind!r}; expected one of {', '.join(SUBSTRATES)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict | None) -> MetricSettings:
        return cls(**(d or {}))

    @property
    def reruns(self) -> bool:
        """Whether a metric re-runs the methods (sanity, stability)."""
        return any(m in RERUN_METRICS for m in self.metrics)


def columns(settings: MetricSettings, stages: Sequence[str] = ()) -> list[Column]:
    """The metric columns beyond insertion / deletion / DiffAUC, in report order. ``stages``: the cascade's
    stage names (:func:`~decam.evaluation.metrics.sanity.stage_names`)."""
    out = []
    if "swapped" in settings.metrics:
        ins, dele = SWAPPED
        out += [Column("diff_swapped", f"DiffAUC (ins. {ins}, del. {dele})", True),
                Column(f"insertion_{ins}", f"insertion from {ins}", True),
                Column(f"deletion_{dele}", f"deletion to {dele}", False)]
    if "mufidelity" in settings.metrics:
        out.append(Column("mufidelity", "MuFidelity", True, 1.0, 2))
    if "road" in settings.metrics:
        out += [Column("road", "ROAD (LeRF−MoRF)/2", True), Column("road_morf", "ROAD MoRF", False),
                Column("road_lerf", "ROAD LeRF", True)]
    if "sanity" in settings.metrics:
        out.append(Column("sanity_class", "random-class ρ", False, 1.0, 2))
        out += [Column(f"sanity_{s}", f"randomized {s} ρ", False, 1.0, 2) for s in stages]
    if "stability" in settings.metrics:
        out += [Column("stability_rho", "seed ρ", True, 1.0, 2),
                Column("stability_diff_std", "seed DiffAUC std", False)]
    return out


@dataclass
class MapScores:
    """Everything the suite measured for one map: report values, the curves and the ROAD scores."""

    curves: CurveScores
    values: dict[str, float] = field(default_factory=dict)
    swapped: CurveScores | None = None
    road: RoadScores | None = None


MethodFactory = Callable[[LoadedModel | None, int | None], MapFn]
"""``(model or None for the evaluation's own, seed or None for the configured one) → method``."""


class MetricSuite:
    """The selected metrics, run through one forward path (``forward``: pixel-space batch → logits) with
    the model's normalization placing the substrates."""

    def __init__(self, settings: MetricSettings, forward: Forward, normalization: Normalization | None = None,
                 batch_size: int = 64) -> None:
        self.settings, self.forward, self.batch_size = settings, forward, batch_size
        self.normalization = resolve_normalization(normalization)
        self.normalization_known = normalization is not None

    def curves(self, x: torch.Tensor, sal: np.ndarray, target: int, insertion: str | None = None,
               deletion: str | None = None) -> CurveScores:
        s = self.settings
        return insertion_deletion(self.forward, x, sal, target, normalization=self.normalization,
                                  insertion=insertion or s.insertion, deletion=deletion or s.deletion,
                                  n_steps=s.n_steps, batch_size=self.batch_size)

    def score_map(self, x: torch.Tensor, sal: np.ndarray, target: int) -> MapScores:
        """The metrics that need only the map (every one but sanity and stability)."""
        s, m = self.settings, self.settings.metrics
        out = MapScores(self.curves(x, sal, target))
        if "swapped" in m:
            out.swapped = self.curves(x, sal, target, *SWAPPED)
            out.values.update({"diff_swapped": out.swapped.diff, f"insertion_{SWAPPED[0]}": out.swapped.insertion,
                               f"deletion_{SWAPPED[1]}": out.swapped.deletion})
        if "mufidelity" in m:
            out.values["mufidelity"] = mu_fidelity(
                self.forward, x, sal, target, normalization=self.normalization, baseline=s.deletion,
                grid=s.mufidelity_grid, p=s.mufidelity_p, n_samples=s.mufidelity_samples, seed=s.seed,
                batch_size=self.batch_size)
        if "road" in m:
            out.road = road(self.forward, x, sal, target, normalization=self.normalization,
                            percentiles=s.road_percentiles, seed=s.seed)
            out.values.update({"road": out.road.combined, "road_morf": out.road.morf_mean,
                               "road_lerf": out.road.lerf_mean})
        return out

    def rerun(self, factory: MethodFactory, model: LoadedModel, x: torch.Tensor, target: int,
              n_classes: int) -> dict[str, float]:
        """Sanity and stability values for the method ``factory`` builds. Every map compared here comes from
        a freshly built method, so a method that keeps a generator across images (the ``random`` control)
        is compared with itself, not with its next draw."""
        s, out = self.settings, {}
        if "sanity" in s.metrics:
            reference = factory(None, None)(x, target)
            _, out["sanity_class"] = random_class_test(factory(None, None), x, target, reference, n_classes, s.seed)
            cascade = cascading_randomization(lambda m: factory(m, None), model, x, target, reference,
                                              blocks=s.sanity_blocks, seed=s.seed)
            out.update({f"sanity_{k}": v for k, v in cascade.items()})
        if "stability" in s.metrics:
            st = stability(lambda seed: factory(None, seed), x, target, lambda m: self.curves(x, m, target).diff,
                           n_seeds=s.stability_seeds)
            out.update({"stability_rho": st.spearman, "stability_diff_std": st.diff_std})
        return out

    def describe(self) -> str:
        """The substrates and metric settings in words, for a report's header."""
        s = self.settings
        mean = ", ".join(f"{v:.3g}" for v in self.normalization[0])
        known = "" if self.normalization_known else "; the model's normalization is unknown, ImageNet's is assumed"
        words = {"zero": f"the normalization's mean colour ({mean}; 0 in the normalized input{known})",
                 "black": "black (pixel 0)", "mean": "the image's mean colour",
                 "blur": "the reference blur (RISE's gkern(11, 5) on the normalized input, zero padding)"}
        text = [f"Deletion to {words[s.deletion]}, insertion from {words[s.insertion]}"
                + (" — the RISE reference substrates" if (s.insertion, s.deletion) == ("blur", "zero") else "")
                + f"; ⌈H·W/{s.n_steps}⌉ pixels per step; softmax probability of the target."]
        if "swapped" in s.metrics:
            text.append(f"Swapped: insertion from {words[SWAPPED[0]]}, deletion to {words[SWAPPED[1]]}.")
        if "mufidelity" in s.metrics:
            text.append(f"MuFidelity (Bhatt et al. 2020): Pearson correlation between the map's mass and the drop "
                        f"of the target logit over {s.mufidelity_samples} random subsets of a "
                        f"{s.mufidelity_grid}×{s.mufidelity_grid} grid (each cell removed with p = "
                        f"{s.mufidelity_p:g}, set to the deletion substrate); higher is better.")
        if "road" in s.metrics:
            text.append("ROAD (Rong et al. 2022, pytorch-grad-cam's noisy linear imputation on the normalized "
                        "input): change of the target's probability when the most (MoRF, lower is better) or "
                        "least (LeRF, higher is better) relevant pixels are imputed, mean over "
                        f"{len(s.road_percentiles)} percentiles "
                        f"({s.road_percentiles[0]}–{s.road_percentiles[-1]} %); "
                        "ROAD = (LeRF − MoRF)/2, higher is better.")
        if "sanity" in s.metrics:
            text.append("Sanity (Adebayo et al. 2018): Spearman ρ between the map and the map for a random other "
                        "class, and after re-initializing the head and the top blocks (cascading); lower is better.")
        if "stability" in s.metrics:
            text.append(f"Stability over {s.stability_seeds} seeds: mean pairwise Spearman ρ of the maps (higher "
                        "is better) and the standard deviation of DiffAUC (lower is better).")
        return " ".join(text)
