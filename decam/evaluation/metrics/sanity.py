"""Sanity checks for saliency maps (Adebayo et al., 2018, "Sanity checks for saliency maps").

- **Cascading model randomization** (their §3, "MPRT" in Quantus): re-initialize the network from the top —
  the classifier head, then the blocks below it one by one — recompute the map on each randomized model
  and compare it with the original map by Spearman rank correlation. A map that stays the same does not
  explain *this* model: lower is better.
- **Random class** (their data-randomization spirit, at the level of one image): the map for a random
  other class compared with the target's map; a map that ignores the class scores 1: lower is better.

Both re-run the method, so they take a *method factory* ``model → method`` (any callable
``(image, target) → map``): decam's search needs a :class:`~decam.models.LoadedModel`, so the randomized
network is wrapped in a new one (see :func:`randomized_model`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from decam.errors import ConfigError
from decam.models import LoadedModel

MapFn = Callable[[torch.Tensor, int], np.ndarray]
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_SEED_OFFSET = 20_181_022


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (flattened); 1.0 for two identical constant maps, 0.0 when
    only one is constant (scipy would give NaN: a constant map ranks nothing)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(spearmanr(a, b)[0])


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _unwrapped(module: nn.Module) -> tuple[str, nn.Module]:
    """``(prefix, network)`` below any wrappers at the root (no parameters of their own, one child holding
    them all, e.g. :class:`~decam.models.Normalized`)."""
    prefix = ""
    while next(module.parameters(recurse=False), None) is None:
        kids = [(n, c) for n, c in module.named_children() if _has_params(c)]
        if len(kids) != 1 or not any(_has_params(g) for g in kids[0][1].children()):
            break
        prefix, module = f"{prefix}{kids[0][0]}.", kids[0][1]
    return prefix, module


def units(module: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The network as a list of ``(name, modules)`` units with parameters, in registration order:
    wrappers at the root and containers (``Sequential``, ``ModuleList``) are opened, and a normalization
    layer joins the unit before it (a conv and its BatchNorm are one unit). EfficientNet-Lite gives
    ``_conv_stem``, ``_blocks.0`` … ``_blocks.15``, ``_conv_head`` (+ ``_bn1``), ``_fc``; a ResNet ``conv1``,
    ``layer1.0`` … ``layer4.2``, ``fc``."""
    out: list[tuple[str, list[nn.Module]]] = []

    def walk(m: nn.Module, prefix: str) -> None:
        for name, child in m.named_children():
            if not _has_params(child):
                continue
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                walk(child, f"{prefix}{name}.")
            elif isinstance(child, NORMS) and out:
                out[-1][1].append(child)
            else:
                out.append((f"{prefix}{name}", [child]))

    prefix, core = _unwrapped(module)
    walk(core, prefix)
    if not out and _has_params(module):
        out.append((prefix.rstrip("."), [core]))
    return out


def stage_names(module: nn.Module, blocks: int) -> list[str]:
    """Names of the cascade's stages: ``head`` (the last unit: the classifier), then ``top1`` … ``top<k>``
    (the head and the k units below it), as far as the network goes."""
    n = min(blocks, len(units(module)) - 1)
    return ["head"] + [f"top{k}" for k in range(1, n + 1)]


def _reinitialize(module: nn.Module) -> None:
    """Each layer's own initialization (``reset_parameters``, which also resets BatchNorm statistics);
    parameters of layers without one are redrawn from a normal distribution of their own scale."""
    covered = set()
    for m in module.modules():
        if hasattr(m, "reset_parameters") and next(m.parameters(recurse=False), None) is not None:
            m.reset_parameters()
            covered |= {id(p) for p in m.parameters(recurse=False)}
    with torch.no_grad():
        for p in module.parameters():
            if id(p) not in covered:
                p.copy_(torch.randn_like(p) * (p.std() if p.numel() > 1 else 1.0))


def randomize(module: nn.Module, stage: int, seed: int = 0) -> nn.Module:
    """A deep copy of ``module`` with its last ``stage + 1`` units (:func:`units`) re-initialized: stage 0
    is the head, stage k the head and the k units below it. Each unit draws from its own generator seed
    (from ``seed`` and its position, offset so that it never replays the draws of a network built right
    after ``torch.manual_seed(seed)``), so a unit gets the same random weights at every stage: the stages
    cascade. The original is untouched."""
    layers = units(module)
    if not 0 <= stage < len(layers):
        raise ValueError(f"stage {stage}: the network has {len(layers)} units (stages 0..{len(layers) - 1})")
    clone = copy.deepcopy(module)
    cloned = units(clone)
    with torch.random.fork_rng(devices=[]):
        for index in range(len(cloned) - 1 - stage, len(cloned)):
            torch.manual_seed(_SEED_OFFSET + 1009 * seed + index)
            for m in cloned[index][1]:
                _reinitialize(m)
    return clone


def network(model: LoadedModel) -> nn.Module:
    """The model's network, which randomization re-initializes; a ConfigError for a black box."""
    if model.module is None or model.forward is not model.module:
        raise ConfigError(f"cascading randomization re-initializes the network's layers; model {model.name!r} "
                          "is a black-box callable (no nn.Module)")
    return model.module


def randomized_model(model: LoadedModel, stage: int, seed: int = 0) -> LoadedModel:
    """``model`` with a :func:`randomize`-d copy of its network, as a new LoadedModel (its ``source`` is
    dropped: it can no longer be rebuilt by name)."""
    net = randomize(network(model), stage, seed)
    return dataclasses.replace(model, forward=net, module=net, source=None, name=f"{model.name}[random {stage}]")


def cascading_randomization(factory: Callable[[LoadedModel], MapFn], model: LoadedModel, image: torch.Tensor,
                            target: int, reference: np.ndarray, *, blocks: int = 3,
                            seed: int = 0) -> dict[str, float]:
    """Spearman correlation between ``reference`` (the map on ``model``) and the map that ``factory``'s
    method gives on each cascade stage of the randomized model, keyed by :func:`stage_names`."""
    names = stage_names(network(model), blocks)
    return {name: spearman(reference, factory(randomized_model(model, stage, seed))(image, target))
            for stage, name in enumerate(names)}


def other_class(target: int, n_classes: int, seed: int = 0) -> int:
    """A class other than ``target``, drawn uniformly with a generator seeded by ``(seed, target)`` (every
    method on an image gets the same one)."""
    if n_classes < 2:
        raise ValueError("the random-class test needs a model with at least 2 classes")
    k = int(np.random.default_rng([seed, target]).integers(n_classes - 1))
    return k + (k >= target)


def random_class_test(method: MapFn, image: torch.Tensor, target: int, reference: np.ndarray, n_classes: int,
                      seed: int = 0) -> tuple[int, float]:
    """``(other class, Spearman(reference, map for the other class))``."""
    other = other_class(target, n_classes, seed)
    return other, spearman(reference, method(image, other))
