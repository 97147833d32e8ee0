"""Properties over many generated cases: every registered encoding turns any real genome into a valid
mask; configuration parsing either gives a valid config or a clean ConfigError."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import decam
from decam.config import load_config
from decam.errors import ConfigError
from decam.registry import ENCODINGS, plugin_params

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
reals = st.floats(allow_nan=False, allow_infinity=False, width=32)  # any real a float32 gene can hold


def parameter_values(factory) -> st.SearchStrategy[dict]:
    """Constructor keyword arguments inside each parameter's declared range (small ints, to stay fast)."""
    fields = {}
    for p in plugin_params(factory):
        lo = p.range.low if p.range and p.range.low is not None else None
        hi = p.range.high if p.range and p.range.high is not None else None
        if p.type is bool:
            fields[p.name] = st.booleans()
        elif p.type is int:
            low = int(lo) if lo is not None else 1
            fields[p.name] = st.integers(low, min(int(hi) if hi is not None else low + 30, low + 30))
        elif p.type is float:
            low_open = bool(p.range and p.range.low_open)
            low = (lo + 1e-3 if low_open else lo) if lo is not None else -10.0
            fields[p.name] = st.floats(low, hi if hi is not None else 10.0)
    return st.fixed_dictionaries(fields)


@pytest.mark.parametrize("name", decam.list_encodings())
def test_any_real_genome_gives_a_valid_mask(name):
    factory = ENCODINGS[name]
    image = torch.rand(3, 20, 28, generator=torch.Generator().manual_seed(0))

    @FAST
    @given(params=parameter_values(factory), data=st.data())
    def check(params, data):
        try:
            encoding = decam.create_encoding(name, **params)
        except ValueError:  # a combination the encoding refuses (config validation reports it)
            assume(False)
        encoding.bind(image)
        n = data.draw(st.integers(1, 3), label="population")
        genes = data.draw(st.lists(reals, min_size=n * encoding.genome_length, max_size=n * encoding.genome_length))
        genomes = torch.tensor(genes, dtype=torch.float32).reshape(n, encoding.genome_length)
        masks = encoding.render(genomes)
        assert torch.equal(genomes, torch.tensor(genes).reshape(n, -1))  # the genome is left untouched
        assert masks.shape == (n, 20, 28) and masks.dtype.is_floating_point
        assert torch.isfinite(masks).all() and masks.min() >= 0 and masks.max() <= 1
        assert torch.equal(masks, encoding.render(genomes.clone()))  # same genome, same mask

    check()


KEYS = ["generations", "budget", "batch_size", "alpha", "seed", "fill", "precision", "device", "model",
        "encoding.K", "encoding.min_side", "encoding.max_side", "searcher.popsize", "searcher.CR", "searcher.F",
        "encoding", "searcher", "aggregator", "nonsense", "encoding.nonsense"]
values = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["null", "true", "false", "[]", "{}", "[1, 2]", "{a: 1}", "${oc.env:HOME}", "${nope}", "'x'",
                     "\"", "[", "ellipses", "de", "paper", "black", "cpu", "cuda:3", "1e400", "-0.0", "0x10"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"), max_size=12),
)

RANGED = {  # key → (strategy of invalid values)
    "generations": st.integers(-1000, 0),
    "batch_size": st.integers(-1000, 0),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)),
    "alpha": st.sampled_from(["nan", "inf", "-inf"]),
    "searcher.CR": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9, allow_infinity=False)),
    "searcher.popsize": st.integers(-100, 3),
    "encoding.K": st.integers(-100, 0),
    "encoding.min_side": st.floats(max_value=0.0, allow_infinity=False),
    "fill": st.text(min_size=1, max_size=8).filter(lambda s: s.strip() not in ("black", "mean", "blur")),
}


@FAST
@given(pairs=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=3))
def test_any_override_gives_a_valid_config_or_a_config_error(pairs):
    overrides = [f"{k}={v}" for k, v in pairs]
    try:
        cfg = load_config(None, overrides)
    except ConfigError as e:
        assert "\n" not in str(e).strip()
        return
    assert cfg.generations >= 1 and cfg.batch_size >= 1 and math.isfinite(cfg.alpha)
    assert cfg.seed is None or 0 <= cfg.seed < 2**32
    assert cfg.fill in ("black", "mean", "blur") and cfg.precision in ("auto", "fp32", "bf16")
    assert load_config(None, overrides) == cfg  # parsing is a pure function of its input


@FAST
@given(data=st.data())
def test_invalid_values_are_rejected_with_config_error(data):
    key = data.draw(st.sampled_from(sorted(RANGED)))
    value = data.draw(RANGED[key])
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        load_config(None, [f"{key}={value}"])


@FAST
@given(text=st.text(max_size=80))
def test_any_config_file_gives_a_valid_config_or_a_config_error(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError:
        pass


def test_yaml_python_tags_are_never_constructed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.yaml"
    for payload in ["!!python/object/apply:os.system ['touch pwned']",
                    "!!python/object/new:subprocess.Popen [['touch', 'pwned']]",
                    "!!python/name:os.system"]:
        path.write_text(f"alpha: {payload}\n")
        with pytest.raises(ConfigError):
            load_config(path)
    assert not (tmp_path / "pwned").exists()


def test_only_omegaconfs_data_resolvers_are_registered():
    """A resolver is code run while reading a config: decam (and its dependencies) must add none."""
    # everything the command line imports (its commands import the heavy parts when they run)
    import decam.cli  # noqa: F401
    import decam.evaluation.methods  # noqa: F401
    import decam.search.explainer  # noqa: F401
    import decam.tracking  # noqa: F401
    import decam.workflows.evaluate  # noqa: F401
    import decam.workflows.explain  # noqa: F401
    import decam.workflows.sweep  # noqa: F401
    from omegaconf.basecontainer import BaseContainer

    resolvers = getattr(BaseContainer, "_resolvers", None)
    if resolvers is None:
        pytest.skip("this OmegaConf keeps its resolvers elsewhere")
    assert set(resolvers) <= {"oc.coerce", "oc.create", "oc.decode", "oc.deprecated", "oc.dict.keys",
                              "oc.dict.values", "oc.env", "oc.select"}
