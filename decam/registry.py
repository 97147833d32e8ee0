"""One generic registry for every kind of plugin (encodings, searchers, aggregators, ...).

Built-in plugins and third-party ones take the same two paths:

* the ``@registry.register(name)`` decorator, run when the plugin's module is imported;
* a package entry point in the registry's group (e.g. ``decam.encodings``), loaded lazily the
  first time anybody looks a name up or lists the registry.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar, get_args, get_origin, get_type_hints

from decam.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """Valid closed range of a numeric plugin parameter; use as ``Annotated[float, Range(0, 1)]``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def check(self, key: str, value: Any) -> None:
        lo_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        hi_ok = self.high is None or value <= self.high
        if not (lo_ok and hi_ok):
            raise ConfigError(f"{key}={value!r} is out of range: expected {self.describe()}")

    def describe(self) -> str:
        lo = "-inf" if self.low is None else _number(self.low)
        hi = "inf" if self.high is None else _number(self.high)
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{']' if self.high is not None else ')'}"


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a plugin, as ``decam list`` and the config checker see it."""

    name: str
    type: type
    default: Any
    range: Range | None = None
    choices: tuple | None = None


def plugin_params(factory: Callable, skip: int = 0) -> list[Param]:
    """Keyword parameters of a plugin factory, read from its signature and type hints.

    ``skip`` drops leading positional arguments that decam supplies itself (e.g. the problem).
    """
    target = factory.__init__ if inspect.isclass(factory) else factory
    hints = get_type_hints(target, include_extras=True)
    out = []
    for i, (name, p) in enumerate(inspect.signature(factory).parameters.items()):
        if i < skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(name, Any)
        rng = choices = None
        if get_origin(hint) is not None and hasattr(hint, "__metadata__"):
            base, *meta = get_args(hint)
            for m in meta:
                if isinstance(m, Range):
                    rng = m
                elif isinstance(m, tuple):
                    choices = m
            hint = base
        if get_origin(hint) is Literal:  # Literal["a", "b"]: a str (or int) with fixed choices
            choices = get_args(hint)
            hint = type(choices[0])
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append(Param(name, hint, default, rng, choices))
    return out


class Registry(Mapping[str, T], Generic[T]):
    """A name → plugin mapping that refuses duplicates and suggests close names for typos."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")`` adds the decorated factory under ``name``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = obj

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()  # importing the module runs its @register decorator
            except Exception as e:  # one broken installed package must not take every decam command down
                warnings.warn(f"decam: skipped {self.kind} plugin {ep.name!r} ({ep.value}): {type(e).__name__}: {e}",
                              RuntimeWarning, stacklevel=3)
                continue
            if ep.name not in self._items:
                self.add(ep.name, obj)

    def __getitem__(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.4)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}: {hint}registered: {', '.join(sorted(self._items)) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted(self._items))

    def __len__(self) -> int:
        self._load_entry_points()
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items


ENCODINGS: Registry = Registry("encoding", "decam.encodings")
SEARCHERS: Registry = Registry("searcher", "decam.searchers")
AGGREGATORS: Registry = Registry("aggregator", "decam.aggregators")
