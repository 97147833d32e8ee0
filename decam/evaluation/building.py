"""Building the methods of an evaluation from names and options — once per run, and again where a metric
re-runs a method on a randomized model (sanity checks) or with another seed (stability)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from decam.errors import ConfigError
from decam.evaluation.methods import METHODS, Method, create_method
from decam.evaluation.metrics.suite import MethodFactory
from decam.models import FastForward, LoadedModel, ModelRunner


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


class MethodBuilder:
    """The methods of one evaluation — ``model``, decam's ``config``, every method's ``options`` — buildable
    again on another model or with another seed. A method on another model gets a fresh fast forward with
    the evaluation's ``device``, ``precision``, BatchNorm folding and ``batch_size`` (never compiled: it
    serves a few maps)."""

    def __init__(self, model: LoadedModel, config=None, options: dict[str, dict] | None = None,
                 runner: ModelRunner | None = None, *, device: str | torch.device = "cpu", precision: str = "fp32",
                 fold: bool = True) -> None:
        self.model, self.config, self.options = model, config, options or {}
        self.runner = runner
        self.device, self.precision, self.fold = device, precision, fold

    def build_all(self, names: Sequence[str]) -> dict[str, Method]:
        return build_methods(names, self.model, self.config, self.options, self.runner)

    def build(self, name: str, model: LoadedModel | None = None, seed: int | None = None) -> Method:
        """Method ``name`` on ``model`` (default: the evaluation's) with ``seed`` (default: as configured;
        decam's is its config's ``seed``, another method's its ``seed`` option — a method without one is
        built as it is)."""
        model = model or self.model
        runner = self.runner
        if model is not self.model:
            batch = self.runner.batch_size if self.runner is not None else 64
            runner = ModelRunner(FastForward(model, self.device, self.precision, fold=self.fold), batch)
        config, options = self.config, dict(self.options.get(name, {}))
        if seed is not None and name == "decam":
            config = self._seeded_config(seed)
        elif seed is not None and "seed" in inspect.signature(METHODS[name]).parameters:
            options["seed"] = seed
        return build_methods([name], model, config, {name: options} if options else None, runner)[name]

    def factory(self, name: str) -> MethodFactory:
        """``(model or None, seed or None) → method`` for the metric suite."""
        return lambda model, seed: self.build(name, model, seed)

    def _seeded_config(self, seed: int):
        from omegaconf import OmegaConf

        from decam.config import load_config

        if self.config is None:
            return load_config(None, [f"seed={seed}"])
        config = OmegaConf.create(OmegaConf.to_container(self.config))
        config.seed = seed
        return config
