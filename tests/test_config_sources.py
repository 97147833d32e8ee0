"""One source per default (configs/default.yaml for the run, a plugin's constructor for its section),
one validation path for both, and Python overrides as mappings rather than strings."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
import yaml
from omegaconf import MISSING

import decam.config.loading as loading
from decam.config import SECTIONS, RunConfig, config_dir, config_from_kwargs, load_config
from decam.errors import ConfigError
from decam.registry import Range, plugin_params


def builtin(registry) -> list[str]:
    """Plugins decam ships (other tests may register their own in this process)."""
    return [n for n in registry if registry[n].__module__.startswith(("decam.", "decam_strategies."))]


def test_default_yaml_is_the_only_source_of_run_defaults():
    fields = dataclasses.fields(RunConfig)
    assert all(f.default is MISSING for f in fields)  # RunConfig declares types, not values
    default = yaml.safe_load((config_dir() / "default.yaml").read_text())
    assert set(default) == {f.name for f in fields}
    cfg = load_config()
    for key, value in default.items():
        if key not in SECTIONS:
            assert cfg[key] == value, key


def test_a_key_missing_from_default_yaml_is_a_clear_error(tmp_path, monkeypatch):
    text = (config_dir() / "default.yaml").read_text()
    (tmp_path / "default.yaml").write_text(re.sub(r"(?m)^device:.*\n", "", text))
    shutil.copy(config_dir() / "paper.yaml", tmp_path / "paper.yaml")
    monkeypatch.setattr(loading, "config_dir", lambda: tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == "config key 'device' has no value (configs/default.yaml must set every RunConfig key)"


def test_run_config_uses_the_plugins_vocabulary_for_ranges_and_choices():
    params = {p.name: p for p in plugin_params(RunConfig)}
    assert params["generations"].range == Range(1, None) and params["generations"].type is int
    from decam.substrates import FILLS

    assert params["fill"].choices == FILLS and params["fill"].type is str  # one list of fills


def test_no_per_plugin_yaml_repeats_constructor_defaults():
    assert not any((config_dir() / section).exists() for section in SECTIONS)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_each_plugin_section_starts_from_its_constructor_defaults(section):
    registry, skip = SECTIONS[section]
    default = load_config()[section]
    for name in builtin(registry):
        signature = {p.name: p.default for p in plugin_params(registry[name], skip=skip)}
        got = dict(load_config(None, [f"{section}={name}"])[section])
        if name == default["name"]:  # configs/default.yaml's own settings win, the rest is the constructor's
            raw = yaml.safe_load((config_dir() / "default.yaml").read_text())[section]
            assert got == {**signature, **raw}, name
        else:
            assert got == {"name": name, **signature}, name


def test_switching_plugin_from_python_drops_the_old_plugins_keys():
    cfg = load_config(None, {"searcher": "cmaes"})
    assert "CR" not in cfg.searcher and cfg.searcher.stdev_init == 0.25
    # one override layer: the keys it sets for the new plugin are kept, whatever their order
    assert load_config(None, [{"searcher.popsize": 16}, "searcher=cmaes"]).searcher.popsize == 16
    assert load_config(None, ["searcher.popsize=16", {"searcher": "cmaes"}]).searcher.popsize == 16


def test_config_from_kwargs_nests_dotted_keys_sections_and_plugin_names():
    layer = config_from_kwargs(alpha=2, searcher={"CR": 0.5}, encoding="rectangles", **{"encoding.K": 12})
    assert layer == {"alpha": 2, "searcher": {"CR": 0.5}, "encoding": {"name": "rectangles", "K": 12}}
    assert config_from_kwargs(**{"encoding.K": 12}, encoding="rectangles") == {"encoding": {"K": 12, "name": "rectangles"}}
    assert config_from_kwargs(searcher={"name": "de", "x.y": 1}, seed=None) == {"searcher": {"name": "de", "x": {"y": 1}},
                                                                                 "seed": None}
    assert config_from_kwargs(searcher={"CR": 0.5}, **{"searcher.F": 1.0}) == {"searcher": {"CR": 0.5, "F": 1.0}}
    with pytest.raises(ConfigError, match="searcher..CR"):
        config_from_kwargs(**{"searcher..CR": 1})


def test_mapping_and_string_overrides_give_the_same_config():
    strings = ["alpha=2", "searcher.CR=0.5", "encoding=rectangles", "encoding.K=12", "seed=null"]
    kwargs = config_from_kwargs(alpha=2, searcher={"CR": 0.5}, encoding="rectangles", seed=None, **{"encoding.K": 12})
    assert load_config(None, kwargs) == load_config(None, strings)
    assert load_config(None, [kwargs]) == load_config(None, strings)


@pytest.mark.parametrize(
    "top, plugin, shape",
    [
        ("generations=0", "searcher.popsize=0", r"{key}=0 is out of range: expected \[\d+, (\d+\]|inf\))"),
        ("fill=red", "aggregator.score=red", r"{key}='red': expected one of \w+(, \w+)+"),
        ("alpha=x", "searcher.CR=x", r"{key}='x': expected a number"),
        ("alpha=nan", "searcher.F=nan", r"{key}=nan: expected a finite number"),
        ("colour=1", "searcher.colour=1", r"unknown (config )?key '?{key}'?( for searcher 'de')?; valid keys: \w+(, \w+)+"),
    ],
)
def test_top_level_and_plugin_keys_fail_in_the_same_shape(top, plugin, shape):
    """One check for both: an out-of-range, wrong-choice, wrong-type or unknown key reads the same."""
    for override in (top, plugin):
        with pytest.raises(ConfigError) as info:
            load_config(None, [override])
        key = override.split("=")[0]
        assert re.fullmatch(shape.format(key=re.escape(key)), str(info.value)), str(info.value)


def test_a_mapping_override_fails_like_the_string_one():
    with pytest.raises(ConfigError) as a:
        load_config(None, ["searcher.CR=1.5"])
    with pytest.raises(ConfigError) as b:
        load_config(None, config_from_kwargs(searcher={"CR": 1.5}))
    assert str(a.value) == str(b.value) == "searcher.CR=1.5 is out of range: expected [0, 1]"


def test_overrides_must_be_strings_or_mappings():
    with pytest.raises(ConfigError, match="expected a key=value string or a mapping"):
        load_config(None, [3])
