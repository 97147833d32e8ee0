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


def parse_methods(names: Sequence[str]) -> dict[str, str]:
    """``["decam", "rise", "riseblur=rise"]`` → {label: registered method}: ``label=method`` runs a method a
    second time under its own name, with its own options (``riseblur.fill=blur``)."""
    out: dict[str, str] = {}
    for item in names:
        label, _, method = (part.strip() for part in item.partition("="))
        method = method or label
        if not label.isidentifier():
            raise ConfigError(f"method label {label!r}: use letters, digits and _ (e.g. riseblur=rise)")
        if label in out:
            raise ConfigError(f"method {label!r} is listed twice")
        METHODS[method]  # unknown names fail here, with suggestions
        out[label] = method
    return out


def split_method_options(overrides: list[str], labels: Sequence[str] = ()) -> tuple[list[str], dict[str, dict]]:
    """``key=value`` overrides → (decam config overrides, {method label: options}).

    A key whose first part names a registered method other than ``decam`` (``gradcam.target_layer=net.layer4``,
    ``rise.n_masks=2000``) or one of ``labels`` is that method's option; every other key configures decam.
    """
    from omegaconf import OmegaConf

    config, options = [], {}
    for item in overrides:
        key, _, value = item.partition("=")
        head, dot, rest = key.partition(".")
        if dot and head != "decam" and (head in METHODS or head in labels):
            options.setdefault(head, {}).update(OmegaConf.to_container(OmegaConf.from_dotlist([f"{rest}={value}"])))
        else:
            config.append(item)
    return config, options


def with_budget(labels: dict[str, str], options: dict[str, dict], budget: int | None) -> dict[str, dict]:
    """Every method with a ``budget`` knob gets ``budget`` queries per image unless its options set one."""
    if budget is None:
        return options
    out = {k: dict(v) for k, v in options.items()}
    for label, method in labels.items():
        if method != "decam" and "budget" in inspect.signature(METHODS[method]).parameters:
            out.setdefault(label, {}).setdefault("budget", budget)
    return out


def build_methods(names: Sequence[str], model: LoadedModel, config, options: dict[str, dict] | None = None,
                  runner: ModelRunner | None = None) -> dict[str, Method]:
    """Validated options → one bound method per name or ``label=method`` (target layers are resolved here,
    before any image); the result is keyed by label.

    ``runner``: where the query methods send their batches (the shared fast path); ``decam``
    builds its own from ``config``."""
    from decam.config import validate_section

    options = options or {}
    labels = parse_methods(names)
    unused = set(options) - set(labels)
    if unused:
        raise ConfigError(f"options given for {', '.join(sorted(unused))}, which --methods does not include")
    if not labels:
        raise ConfigError("no methods to evaluate")
    out = {}
    for label, name in labels.items():
        if name == "decam":
            out[label] = create_method(name, model, config=config)
            continue
        params = validate_section(name, METHODS, {"name": name, **options.get(label, {})}, skip=1)
        params.pop("name")
        out[label] = create_method(name, model, runner, **params)
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
        self.labels: dict[str, str] = {}
        self.runner = runner
        self.device, self.precision, self.fold = device, precision, fold

    def build_all(self, names: Sequence[str]) -> dict[str, Method]:
        self.labels = parse_methods(names)
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
        method = self.labels.get(name, name)
        config, options = self.config, dict(self.options.get(name, {}))
        if seed is not None and method == "decam":
            config = self._seeded_config(seed)
        elif seed is not None and "seed" in inspect.signature(METHODS[method]).parameters:
            options["seed"] = seed
        spec = name if method == name else f"{name}={method}"
        return build_methods([spec], model, config, {name: options} if options else None, runner)[name]

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
