"""Config validation: every mistake is one line naming the key and what is valid, before any model work."""

from __future__ import annotations

import inspect

import pytest

from decam.cli import main
from decam.config import load_config
from decam.errors import ConfigError
from decam.search.explainer import Explainer
from decam.registry import SEARCHERS


@pytest.mark.parametrize(
    "overrides, expected",
    [
        # unknown keys
        (["colour=red"], "unknown config key 'colour'"),
        (["searcher.CRR=0.5"], "unknown key searcher.CRR for searcher 'de'; valid keys: popsize, CR, F"),
        (["searcher=cmaes", "searcher.CR=0.5"], "unknown key searcher.CR for searcher 'cmaes'"),
        (["encoding=superpixels", "encoding.K=4"], "unknown key encoding.K for encoding 'superpixels'"),
        # wrong types
        (["searcher.popsize=many"], "searcher.popsize"),
        (["encoding.K=2.5"], "encoding.K"),
        (["searcher.CR=high"], "searcher.CR"),
        (["searcher=ga", "searcher.elitist=perhaps"], "searcher.elitist"),
        # out of range
        (["searcher.CR=1.5"], "searcher.CR=1.5 is out of range: expected [0, 1]"),
        (["searcher.CR=-0.1"], "searcher.CR=-0.1 is out of range: expected [0, 1]"),
        (["searcher.F=0"], "searcher.F=0.0 is out of range: expected (0, 2]"),
        (["searcher.F=-1"], "searcher.F=-1.0 is out of range: expected (0, 2]"),
        (["encoding.K=0"], "encoding.K=0 is out of range: expected [1, 1000]"),
        (["encoding=rectangles", "encoding.K=-3"], "encoding.K=-3 is out of range: expected [1, 1000]"),
        (["searcher.popsize=3"], "searcher.popsize=3 is out of range: expected [4, 100000]"),
        (["searcher=cmaes", "searcher.popsize=2"], "searcher.popsize=2 is out of range: expected [4, 100000]"),
        (["searcher=cmaes", "searcher.stdev_init=0"], "searcher.stdev_init=0.0 is out of range: expected (0, inf)"),
        (["searcher=ga", "searcher.mutation_probability=2"], "searcher.mutation_probability=2.0 is out of range"),
        (["searcher=pgpe", "searcher.max_speed=-1"], "searcher.max_speed=-1.0 is out of range: expected (0, inf)"),
        (["budget=0"], "budget=0 is out of range"),
        (["budget=63"], "budget=63 does not cover the first generation of searcher 'de' (up to 2 × popsize = 64"),
        # unknown plugin
        (["searcher=cmaz"], "unknown searcher 'cmaz': did you mean 'cmaes'"),
        # Ray actors (decam.search.problem)
        (["actors=-1"], "actors=-1 is out of range: expected [0, 4096]"),
        (["actors=1"], "actors=1: expected 0 (evaluate in this process) or at least 2"),
        (["gpus_per_actor=0.5"], "gpus_per_actor=0.5 needs actors >= 2"),
        (["actors=2", "device=cuda"], "actors=2 needs device=cpu (got 'cuda')"),
    ],
)
def test_bad_values_are_one_line_errors_naming_key_and_valid_range(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_switching_searcher_starts_from_its_own_defaults():
    cfg = load_config(None, ["searcher=cmaes", "searcher.popsize=16"])
    assert dict(cfg.searcher) == {"name": "cmaes", "popsize": 16, "stdev_init": 0.25, "separable": False, "active": True}


def test_optional_parameters_take_null_or_a_checked_number():
    assert load_config(None, ["searcher=snes"]).searcher.stdev_learning_rate is None
    assert load_config(None, ["searcher=snes", "searcher.stdev_learning_rate=0.05"]).searcher.stdev_learning_rate == 0.05
    with pytest.raises(ConfigError, match="searcher.stdev_learning_rate"):
        load_config(None, ["searcher=snes", "searcher.stdev_learning_rate=fast"])


def test_cli_rejects_bad_config_with_exit_2_before_loading_any_model(tmp_path, monkeypatch, capsys):
    def no_model_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the config was validated")

    monkeypatch.setattr(Explainer, "__init__", no_model_work)
    for bad in (["searcher=ga", "searcher.tournament_size=0"], ["encoding.K=0"], ["searcher=nope"], ["searcher.CR=x"]):
        code = main(["explain", "--out", str(tmp_path), *bad])
        err = capsys.readouterr().err.strip()
        assert code == 2, bad
        assert len(err.splitlines()) == 1 and err.startswith("decam: error:"), err
        assert bad[-1].split("=")[0] in err
    assert not any(tmp_path.iterdir())


def test_searcher_factories_take_the_problem_first_then_keywords():
    for name in SEARCHERS:
        first = next(iter(inspect.signature(SEARCHERS[name]).parameters.values()))
        assert first.name == "problem", name
