"""The plugin registry: duplicates, typos, and discovery through package entry points."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import decam
from decam.errors import ConfigError
from decam.registry import ENCODINGS, SEARCHERS, Registry

BUILTIN_ENCODINGS = {"ellipses", "rectangles", "superpixels"}
BUILTIN_SEARCHERS = {"de", "cmaes", "ga", "snes", "pgpe"}


def test_builtins_are_listed():
    assert BUILTIN_ENCODINGS <= set(decam.list_encodings())
    assert BUILTIN_SEARCHERS <= set(decam.list_searchers())


def test_builtins_are_declared_as_entry_points_like_any_third_party_plugin():
    for group, registry, names in (("decam.encodings", ENCODINGS, BUILTIN_ENCODINGS),
                                   ("decam.searchers", SEARCHERS, BUILTIN_SEARCHERS)):
        eps = {ep.name: ep for ep in entry_points(group=group)}
        assert names <= set(eps)
        for name in names:
            assert eps[name].load() is registry[name]


def test_registering_a_taken_name_raises():
    with pytest.raises(ValueError, match="'ellipses' is already registered"):
        decam.register_encoding("ellipses")(type("Impostor", (), {}))
    with pytest.raises(ValueError, match="'cmaes' is already registered"):
        decam.register_searcher("cmaes")(lambda problem: None)
    assert ENCODINGS["ellipses"].__name__ == "Ellipses"


def test_registering_the_same_object_twice_is_harmless():
    reg: Registry = Registry("widget", "decam-tests.no-such-group")
    obj = object()
    reg.add("w", obj)
    reg.add("w", obj)  # a module imported twice re-runs its decorator
    assert list(reg) == ["w"] and reg["w"] is obj


@pytest.mark.parametrize(
    "call, suggestion",
    [
        (lambda: decam.create_encoding("elipses"), "'ellipses'"),
        (lambda: decam.create_encoding("superpixel"), "'superpixels'"),
        (lambda: decam.create_searcher("cma", None), "'cmaes'"),
        (lambda: decam.create_searcher("ge", None), "'de'"),
    ],
)
def test_unknown_name_is_a_value_error_naming_the_closest_names(call, suggestion):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, ConfigError) and "\n" not in message
    assert "did you mean" in message and suggestion in message


def test_unknown_name_without_a_close_match_lists_what_is_registered():
    with pytest.raises(ValueError, match="registered: .*ellipses.*superpixels") as info:
        decam.create_encoding("zzzzzz")
    assert "did you mean" not in str(info.value)


def _fake_distribution(site: Path, group: str, lines: list[str], module: str, source: str) -> None:
    """What ``pip install`` leaves behind: a module and a ``*.dist-info`` with ``entry_points.txt``."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")


def test_entry_points_are_discovered_lazily(tmp_path, monkeypatch):
    group = "decam-tests.widgets"
    _fake_distribution(tmp_path, group, ["spinner = acme_widgets:Spinner"], "acme_widgets",
                       "class Spinner:\n    '''Spins.'''\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_widgets", raising=False)
    reg: Registry = Registry("widget", group)
    assert "acme_widgets" not in sys.modules  # nothing imported before the first look-up
    assert list(reg) == ["spinner"]
    assert reg["spinner"].__doc__ == "Spins."
    assert "acme_widgets" in sys.modules


def test_a_broken_installed_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch):
    group = "decam-tests.gadgets"
    _fake_distribution(tmp_path, group, ["good = acme_good:Good", "bad = acme_bad:Bad"], "acme_good",
                       "class Good:\n    pass\n")
    (tmp_path / "acme_bad.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("gadget", group)
    with pytest.warns(RuntimeWarning, match="skipped gadget plugin 'bad'.*needs libfoo"):
        assert list(reg) == ["good"]
    with pytest.raises(ValueError, match="did you mean 'good'"):
        reg["goo"]
