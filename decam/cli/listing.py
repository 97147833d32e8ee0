"""``decam list``: registered encodings, searchers, aggregators, models and evaluation methods, with
the parameters a run starts from."""

from __future__ import annotations

import click

from decam.cli.options import debug_option
from decam.errors import DecamError


def _summary_line(obj: object) -> str:
    """A plugin docstring's first paragraph on one line, without reST markup."""
    import inspect

    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "")


def _default(value: object) -> str:
    return repr(float(f"{value:.6g}")) if isinstance(value, float) else repr(value)


def _run_defaults(default, section: str, name: str) -> dict:
    """The section a run gets with ``section=name`` on the default config ({} if it does not validate)."""
    from decam.config import load_config

    if name == default[section]["name"]:
        return dict(default[section])
    try:
        return dict(load_config(None, [f"{section}={name}"])[section])
    except DecamError:
        return {}


@click.command("list", short_help="registered encodings, searchers, aggregators and models")
@debug_option
def list_plugins() -> int:
    """List the registered encodings, searchers, aggregators, models and evaluation methods."""
    from decam.config import SECTIONS, load_config
    from decam.models import MODELS
    from decam.registry import plugin_params

    default = load_config()
    print("Parameters show the values a run starts from: configs/default.yaml for the default plugin "
          "(marked *), else the plugin's own defaults.")
    for section, (registry, skip) in SECTIONS.items():
        print(f"{section}s:")
        for name in registry:
            factory = registry[name]
            start = _run_defaults(default, section, name)
            params = ", ".join(
                f"{p.name}={_default(start.get(p.name, p.default))}" + (f" {p.range.describe()}" if p.range else "")
                for p in plugin_params(factory, skip=skip)
            )
            doc = _summary_line(factory)
            mark = "*" if name == default[section]["name"] else " "
            print(f" {mark}{name:<14} {params}")
            if doc:
                print(f"  {'':<14} {doc}")
    print("models:")
    for name in MODELS:
        print(f"  {name}")
    print("  torchvision:<arch>  (torchvision's ImageNet weights, from its local cache)")
    from decam.models.http_model import http_model
    from decam.models.onnx_model import onnx_model

    for pattern, factory, what in (("onnx:PATH", onnx_model, "an ONNX graph, run by ONNX Runtime"),
                                   ("http(s)://HOST:PORT/PATH", http_model, "a model served over HTTP, e.g. by decam serve")):
        options = ", ".join(f"{p.name}={_default(p.default)}" for p in plugin_params(factory, skip=1))
        print(f"  {pattern}  ({what}; model_options: {options})")
    print("  package.module:function  (imports and runs your code)")
    from decam.evaluation.methods import METHODS

    print("methods (decam evaluate --methods):")
    for name in METHODS:
        factory = METHODS[name]
        params = ", ".join(f"{p.name}={p.default!r}" for p in plugin_params(factory, skip=1) if p.name != "config")
        doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        print(f"  {name:<14} {params}")
        if doc:
            print(f"  {'':<14} {doc}")
    return 0
