"""Options that several commands share, as decorators. A group of options reaches the command as
one value (:class:`RunOptions`, :class:`TrackingOptions`) instead of one keyword per option."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from decam.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
DEBUG = "decam.debug"
"""Key in ``click.Context.meta`` (shared by the group and its commands) set by ``--debug``."""
LOCAL_RAY = "local"
"""The value of ``--ray`` without an address: start a local Ray instance."""
_TRUE_WORDS = ("true", "1", "yes")


def _grouped(keyword: str, build: type, options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Add ``options`` (named like ``build``'s fields) to a command, which gets them as ``keyword=build(...)``."""
    names = [f.name for f in fields(build)]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            return command(*args, **kwargs, **{keyword: build(**values)})

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class RunOptions:
    """``--model --config --seed --popsize --generations --budget``: the search's settings."""

    model: str | None = None
    config: str | None = None
    seed: int | None = None
    popsize: int | None = None
    generations: int | None = None
    budget: int | None = None

    def overrides(self) -> list[str]:
        """The options given, as config overrides (they come after the ``key=value`` arguments)."""
        keys = (("seed", self.seed), ("generations", self.generations), ("budget", self.budget),
                ("searcher.popsize", self.popsize), ("model", self.model))
        return [f"{key}={value}" for key, value in keys if value is not None]


def run_options(budget_help: str) -> Callable[[F], F]:
    """The model and search options that ``explain`` and ``evaluate`` share, as ``run=RunOptions(...)``."""
    return _grouped("run", RunOptions, [
        click.option("--model", metavar="MODEL", help="registered name, torchvision:<arch>, onnx:PATH, "
                     "http(s)://HOST:PORT/PATH or package.module:function"),
        click.option("--config", metavar="FILE", type=click.Path(),
                     help="YAML file merged over configs/default.yaml (e.g. configs/paper.yaml)"),
        click.option("--seed", type=int, metavar="N", help="random seed of the search (seed=N)"),
        click.option("--popsize", type=int, metavar="N", help="masks per generation (searcher.popsize=N)"),
        click.option("--generations", type=int, metavar="N", help="generations of the search (generations=N)"),
        click.option("--budget", type=int, metavar="N", help=budget_help),
    ])


@dataclass(frozen=True)
class TrackingOptions:
    """``--mlflow --experiment --tracking-uri``, or the same as ``tracking.*`` overrides."""

    mlflow: bool = False
    experiment: str | None = None
    tracking_uri: str | None = None

    @property
    def enabled(self) -> bool:
        """``--experiment`` and ``--tracking-uri`` imply ``--mlflow``."""
        return self.mlflow or self.experiment is not None or self.tracking_uri is not None

    def take_overrides(self, overrides: list[str]) -> tuple[TrackingOptions, list[str]]:
        """Move ``tracking.enabled=true``, ``tracking.experiment=NAME``, ``tracking.uri=URI`` out of the
        config overrides into the options they mean; the other overrides are returned as they are."""
        options, rest = self, []
        for item in overrides:
            key, _, value = item.partition("=")
            if key == "tracking.enabled":
                options = replace(options, mlflow=options.mlflow or value.strip().lower() in _TRUE_WORDS)
            elif key == "tracking.experiment":
                options = replace(options, experiment=value)
            elif key == "tracking.uri":
                options = replace(options, tracking_uri=value)
            elif key.startswith("tracking."):
                raise ConfigError(f"unknown key {key}; valid: tracking.enabled, tracking.experiment, tracking.uri")
            else:
                rest.append(item)
        return options, rest


def tracking_options(mlflow_help: str, experiment: str) -> Callable[[F], F]:
    """MLflow options of ``explain`` and ``evaluate`` (default experiment ``experiment``), as
    ``tracking=TrackingOptions(...)``."""
    return _grouped("tracking", TrackingOptions, [
        click.option("--mlflow", is_flag=True, help=mlflow_help),
        click.option("--experiment", metavar="NAME", help=f"MLflow experiment (default: {experiment}; implies --mlflow)"),
        click.option("--tracking-uri", metavar="URI",
                     help="MLflow store, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000 "
                          "(default: $MLFLOW_TRACKING_URI or MLflow's default; implies --mlflow)"),
    ])


ray_option = click.option(
    "--ray", is_flag=False, flag_value=LOCAL_RAY, default=None, metavar="[ADDRESS]",
    help="spread images over a Ray cluster (no ADDRESS: a local Ray instance)")


def ray_address(ray: str | None) -> str | None:
    """The cluster address a ``--ray`` value names (None: a local Ray instance, or no Ray at all)."""
    return None if ray == LOCAL_RAY else ray


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG] = True


def debug_flag(hidden: bool) -> Callable[[F], F]:
    """``--debug``: tracebacks for errors; the group's, and a hidden one on each command."""
    return click.option("--debug", is_flag=True, expose_value=False, hidden=hidden, callback=_remember_debug,
                        help="show tracebacks")


debug_option = debug_flag(hidden=True)


def debugging() -> bool:
    """Whether ``--debug`` was given, before or after the command's name."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(DEBUG))


def output_folder(out: str | Path, option: str = "--out") -> Path:
    """``--out``, created if needed; a usage error (exit 2) when it cannot hold files.

    Checked before any model work, by writing a small file: permission bits miss a read-only
    mount, a full disk, a quota, and root on a read-only filesystem.
    """
    from decam.io import check_writable

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{option} {out}: cannot create the output folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {out}: output folder is not writable")
    try:
        check_writable(path)
    except OSError as e:
        raise ConfigError(f"{option} {out}: output folder cannot take files ({e.strerror or e})") from None
    return path
