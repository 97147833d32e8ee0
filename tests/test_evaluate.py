"""decam evaluate: the tables, maps, curves and gallery it writes, the scores it records, and its errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from decam.cli import main
from decam.config import load_config
from decam.errors import ConfigError, InputError
from decam.workflows.evaluate import Evaluation, build_methods, read_labels, split_method_options
from decam.evaluation.metrics import insertion_deletion
from decam.models import LoadedModel

SIZE = 32
REGION = (slice(4, 16), slice(14, 28))


def oracle(x: torch.Tensor) -> torch.Tensor:
    """Class 0's logit is the brightness of a hidden box; classes 1 and 2 are constants."""
    kept = x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3))
    return torch.stack([10 * kept, torch.full_like(kept, 5.0), torch.zeros_like(kept)], dim=1)


def oracle_model() -> LoadedModel:
    """Loadable as ``--model test_evaluate:oracle_model`` (pytest puts tests/ on sys.path)."""
    return LoadedModel(oracle, (SIZE, SIZE), None, ["box", "const", "zero"], "oracle", None)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, value in (("a.png", 230), ("b.png", 200)):
        Image.fromarray(np.full((40, 40, 3), value, dtype=np.uint8)).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "labels.csv").write_text("file,class_index,name\na.png,0,box\nb.png,1,const\nbroken.jpg,0,box\n")
    return folder


def test_evaluation_writes_every_output_and_scores_can_be_recomputed(photos, tmp_path):
    model = oracle_model()
    methods = build_methods(["rise", "random", "gaussian"], model, None, {"rise": {"n_masks": 64}})
    out = tmp_path / "out"
    ev = Evaluation(model, methods, out, labels=read_labels(tmp_path / "labels.csv"))
    results = ev.run(sorted(photos.iterdir()))
    assert [r.error is None for r in results] == [True, True, False]
    assert "broken.jpg" in results[2].error and results[2].exit_code == 3

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["method"] for r in rows} == {"rise", "random", "gaussian"}
    assert {r["target"] for r in rows if r["image"].endswith("b.png")} == {"1"}  # from the labels
    rise_a = next(r for r in rows if r["method"] == "rise" and r["image"].endswith("a.png"))
    assert int(rise_a["queries"]) == 64

    sal = np.load(out / "maps" / "a" / "rise.npy")
    assert sal.shape == (SIZE, SIZE) and sal.dtype == np.float32
    x = torch.full((3, SIZE, SIZE), 230 / 255)
    again = insertion_deletion(oracle, x, sal, 0)
    assert float(rise_a["insertion"]) == pytest.approx(again.insertion, abs=1e-5)
    assert float(rise_a["diff"]) == pytest.approx(again.diff, abs=1e-5)

    summary = (out / "summary.md").read_text()
    assert "| rise | 2 |" in summary and "broken.jpg" in summary and "Skipped images (1)" in summary
    assert (out / "curves" / "a.png").is_file() and (out / "gallery.png").is_file()
    assert Image.open(out / "gallery.png").size[0] > Image.open(out / "curves" / "a.png").size[0] // 2


def test_top1_target_without_labels_and_decam_wins_column(photos, tmp_path):
    model = oracle_model()
    cfg = load_config(None, ["generations=2", "searcher.popsize=8", "encoding.K=2"])
    ev = Evaluation(model, build_methods(["decam", "random"], model, cfg), tmp_path / "out")
    ev.run([photos / "a.png"])
    rows = ev.rows()
    assert {r.target for r in rows} == {0}  # the oracle's top-1 on a bright image
    assert next(r for r in rows if r.method == "decam").queries > 1
    assert "decam better" in (tmp_path / "out" / "summary.md").read_text()


def test_split_method_options():
    config, options = split_method_options(
        ["generations=5", "rise.n_masks=100", "gradcam.target_layer=net.layer4", "searcher.CR=0.5"])
    assert config == ["generations=5", "searcher.CR=0.5"]
    assert options == {"rise": {"n_masks": 100}, "gradcam": {"target_layer": "net.layer4"}}


def test_bad_method_options_are_config_errors():
    model = oracle_model()
    with pytest.raises(ConfigError, match="unknown key rise.masks"):
        build_methods(["rise"], model, None, {"rise": {"masks": 3}})
    with pytest.raises(ConfigError, match="out of range"):
        build_methods(["rise"], model, None, {"rise": {"n_masks": 0}})
    with pytest.raises(ConfigError, match="does not include"):
        build_methods(["random"], model, None, {"rise": {"n_masks": 3}})


def test_labels_csv_errors(tmp_path):
    bad = tmp_path / "l.csv"
    bad.write_text("name,label\na.png,1\n")
    with pytest.raises(InputError, match="lacks column"):
        read_labels(bad)
    bad.write_text("file,class_index\na.png,one\n")
    with pytest.raises(InputError, match="not an integer"):
        read_labels(bad)


def test_cli_evaluate(photos, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["evaluate", str(photos), "rise.n_masks=32", "--model", "test_evaluate:oracle_model",
            "--methods", "rise,gaussian", "--labels", str(tmp_path / "labels.csv"), "--out", str(out), "--quiet"]
    assert main(args) == 1  # one image of three failed: partial success
    assert "broken.jpg" in capsys.readouterr().err
    assert main(args + ["--limit", "2"]) == 0  # a.png and b.png (sorted), not broken.jpg
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert main(["evaluate", str(photos), "--methods", "gradcamm", "--model", "test_evaluate:oracle_model"]) == 2
    assert "did you mean 'gradcam'" in capsys.readouterr().err
    assert main(["evaluate", str(photos), "--methods", "gradcam", "--model", "test_evaluate:oracle_model",
                 "--out", str(out)]) == 2  # a black box has no gradients
    assert "needs the network as an nn.Module" in capsys.readouterr().err


def test_cli_evaluate_budget_sizes_every_query_method_and_labels_run_a_method_twice(photos, tmp_path):
    out = tmp_path / "budget"
    args = ["evaluate", str(photos / "a.png"), "--model", "test_evaluate:oracle_model", "--budget", "48", "--popsize", "8",
            "--methods", "rise,riseblur=rise,sobol,random", "riseblur.fill=blur", "sobol.budget=110", "--out", str(out),
            "--quiet"]
    assert main(args) == 0
    with open(out / "results.csv", newline="") as f:
        queries = {row["method"]: int(row["queries"]) for row in csv.DictReader(f)}
    assert queries == {"rise": 48, "riseblur": 48, "sobol": 102, "random": 0}  # sobol: 2 designs of 7² + 2
    assert not np.array_equal(np.load(out / "maps" / "a" / "rise.npy"), np.load(out / "maps" / "a" / "riseblur.npy"))
    assert main(args[:7] + ["--methods", "rise,rise", "--out", str(out)]) == 2  # listed twice: a config error


def test_a_model_with_nan_logits_fails_each_image_with_exit_code_4(photos, tmp_path):
    model = LoadedModel(lambda x: torch.full((x.shape[0], 3), float("nan")), (SIZE, SIZE), None, None, "nan", None)
    ev = Evaluation(model, build_methods(["random"], model, None), tmp_path / "out")
    results = ev.run([photos / "a.png"])
    assert results[0].exit_code == 4 and "NaN" in results[0].error and not ev.rows()


def test_cli_evaluate_logs_the_comparison_to_mlflow(photos, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["evaluate", str(photos), "rise.n_masks=32", "--model", "test_evaluate:oracle_model", "--methods",
            "rise,gaussian", "--limit", "2", "--out", str(tmp_path / "ev"), "--quiet", "--tracking-uri", uri]
    assert main(args) == 0
    client = mlflow.MlflowClient(tracking_uri=uri)  # not mlflow.set_tracking_uri: that would leak into other tests
    runs = client.search_runs([client.get_experiment_by_name("decam-evaluate").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 1 + 4 and len(children) == 4  # a parent + (2 images × 2 methods)
    assert all("diffauc" in r.data.metrics for r in children)


def test_cli_evaluate_takes_tracking_overrides_and_options_after_the_images(photos, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["evaluate", "--out", str(tmp_path / "ev"), "--quiet", str(photos), "--methods", "gaussian",
            f"tracking.uri={uri}", "--limit", "1", "tracking.experiment=from-overrides",
            "--model", "test_evaluate:oracle_model"]
    assert main(args) == 0  # tracking.uri implies tracking, as --tracking-uri does
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("from-overrides").experiment_id])
    assert len(runs) == 1 + 1  # a parent + (1 image × 1 method)
    assert (tmp_path / "ev" / "results.csv").is_file()


def test_cli_evaluate_rejects_unknown_tracking_keys_before_the_model_loads(photos, tmp_path, monkeypatch, capsys):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(Evaluation, "from_spec", no_model)
    assert main(["evaluate", str(photos), "tracking.colour=red", "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("decam: error: unknown key tracking.colour") and len(err.splitlines()) == 1


def cnn_model() -> LoadedModel:
    """A tiny convolutional network (an nn.Module, so the sanity checks can randomize it), ImageNet-normalized."""
    from decam.models import IMAGENET_MEAN, IMAGENET_STD, Normalized

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    module = Normalized(net).eval()
    return LoadedModel(module, (SIZE, SIZE), None, ["a", "b", "c"], "cnn", module,
                       normalization=(IMAGENET_MEAN, IMAGENET_STD))


@pytest.mark.slow
def test_every_metric_reaches_results_and_summary(photos, tmp_path):
    from decam.workflows.evaluate import MethodBuilder, MetricSettings

    model = cnn_model()
    cfg = load_config(None, ["generations=2", "searcher.popsize=8", "encoding.K=2"])
    builder = MethodBuilder(model, cfg, {"rise": {"n_masks": 16}})
    settings = MetricSettings("all", mufidelity_samples=20, road_percentiles=(30, 70), stability_seeds=2,
                              sanity_blocks=1)
    ev = Evaluation(model, builder.build_all(["decam", "rise", "gaussian"]), tmp_path / "out", settings=settings,
                    builder=builder)
    assert [r.error for r in ev.run([photos / "a.png"])] == [None]
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    keys = ["diff_swapped", "insertion_black", "deletion_blur", "mufidelity", "road", "road_morf", "road_lerf",
            "sanity_class", "sanity_head", "sanity_top1", "stability_rho", "stability_diff_std"]
    assert all(rows[m][k] != "" for m in rows for k in keys)
    assert {(r["insertion_substrate"], r["deletion_substrate"]) for r in rows.values()} == {("blur", "zero")}
    assert float(rows["gaussian"]["sanity_head"]) == pytest.approx(1.0)  # its map ignores the model
    assert float(rows["gaussian"]["stability_rho"]) == pytest.approx(1.0)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Deletion to the normalization's mean colour (0.485, 0.456, 0.406; 0 in the normalized input)" in summary
    assert "insertion from the reference blur" in summary and "MuFidelity ↑" in summary and "ROAD MoRF ↓" in summary
    assert "| rise |" in summary.split("decam − method, paired")[1]


def test_cli_metrics_and_substrates(photos, tmp_path, capsys):
    out = tmp_path / "cli"
    base = ["evaluate", str(photos / "a.png"), "--model", "test_evaluate:oracle_model", "--methods", "gaussian",
            "--out", str(out), "--quiet"]
    assert main(base + ["--metrics", "curves", "--deletion-to", "black"]) == 0
    with open(out / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["insertion_substrate"], row["deletion_substrate"]) == ("blur", "black") and "mufidelity" not in row
    assert "Deletion to black (pixel 0)" in (out / "summary.md").read_text()
    assert main(base + ["--metrics", "raod"]) == 2
    assert "did you mean 'road'" in capsys.readouterr().err
    assert main(base + ["--metrics", "sanity"]) == 2  # randomization needs the network
    assert "black-box callable" in capsys.readouterr().err


def test_rows_read_back_from_results_csv(photos, tmp_path):
    from decam.workflows.evaluate import Row

    model = oracle_model()
    ev = Evaluation(model, build_methods(["gaussian"], model, None), tmp_path / "out")
    ev.run([photos / "a.png"])
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        (back,) = [Row.from_record(r) for r in csv.DictReader(f)]
    (row,) = ev.rows()
    assert back.method == row.method and back.target == row.target and back.diff == pytest.approx(row.diff, abs=1e-6)
    assert set(back.scores) == set(row.scores) == {"diff_swapped", "insertion_black", "deletion_blur", "mufidelity",
                                                  "road", "road_morf", "road_lerf"}


def boxes_model() -> LoadedModel:
    """Classes 0 and 1 each read their own box (class 0 more strongly), class 2 is a constant rival;
    loadable as ``test_evaluate:boxes_model``."""
    from decam.testing import BoxesOracle

    oracle = BoxesOracle([(2, 2, 12, 12), (18, 18, 30, 30)])
    weights = torch.tensor([1.0, 0.8, 1.0])
    return LoadedModel(lambda x: oracle(x) * weights.to(x), (SIZE, SIZE), None, ["left", "right", "rival"], "boxes",
                       None)


def test_targets_give_rows_per_class_from_one_decam_search_and_one_run_per_class_elsewhere(photos, tmp_path):
    from decam.io.images import open_image, to_input
    from decam.search.explainer import Explainer
    from decam.workflows.evaluate import MetricSettings

    model = boxes_model()
    cfg = load_config(None, ["generations=20", "searcher.popsize=16", "fill=black", "alpha=2", "encoding.K=4"])
    methods = build_methods(["decam", "rise"], model, cfg, {"rise": {"n_masks": 64, "fill": "black"}})
    explainer, searches = methods["decam"].explainer, []
    search = explainer.explain
    explainer.explain = lambda image, target=None, *a, **k: searches.append(target) or search(image, target, *a, **k)
    out = tmp_path / "out"
    ev = Evaluation(model, methods, out, targets="top2", settings=MetricSettings("curves"))
    (result,) = ev.run([photos / "a.png"])
    assert result.error is None and searches == [[0, 1]]  # ONE search for both classes

    rows = {(r.method, r.rank): r for r in ev.rows()}
    assert sorted(rows) == [("decam", 1), ("decam", 2), ("rise", 1), ("rise", 2)]
    assert [rows["decam", k].target for k in (1, 2)] == [rows["rise", k].target for k in (1, 2)] == [0, 1]
    assert rows["decam", 1].queries == 16 * (20 + 1) + 1  # the shared search, counted once
    assert (rows["decam", 2].queries, rows["decam", 2].seconds) == (0, 0.0)
    assert rows["rise", 1].queries == rows["rise", 2].queries == 64  # RISE runs once per class

    second = np.load(out / "maps" / "a" / "decam.1.npy")
    x = to_input(open_image(photos / "a.png"), model.input_size, model.resize)
    np.testing.assert_array_equal(second, Explainer(model, cfg).explain(x, [0, 1]).targets[1].saliency)
    box = np.zeros((SIZE, SIZE), bool)
    box[18:30, 18:30] = True
    assert box.ravel()[np.argsort(second.ravel())[::-1][: box.sum()]].mean() > 0.6  # class 1's map: its box
    assert {p.name for p in (out / "maps" / "a").iterdir()} == {"decam.0.npy", "decam.1.npy", "rise.0.npy",
                                                                "rise.1.npy"}
    assert (out / "curves" / "a.0.png").is_file() and (out / "curves" / "a.1.png").is_file()

    with open(out / "results.csv", newline="") as f:
        assert [(r["method"], r["target"], r["rank"]) for r in csv.DictReader(f)] == [
            ("decam", "0", "1"), ("rise", "0", "1"), ("decam", "1", "2"), ("rise", "1", "2")]
    summary = (out / "summary.md").read_text()
    assert "2 classes each" in summary and "## Searched class (rank 1)" in summary
    assert "## Other class (rank 2)" in summary and "| decam | 1 |" in summary.split("Other class")[1]


def test_without_targets_results_have_no_rank_column(photos, tmp_path):
    model = oracle_model()
    ev = Evaluation(model, build_methods(["gaussian"], model, None), tmp_path / "out")
    ev.run([photos / "a.png"])
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert "rank" not in row and row["target"] == "0"
    assert "Searched class" not in (tmp_path / "out" / "summary.md").read_text()


def test_cli_targets_with_labels_put_the_label_first_and_a_fixed_list_is_refused(photos, tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    out, labels, uri = tmp_path / "cli", str(tmp_path / "labels.csv"), f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = ["evaluate", str(photos / "b.png"), "--model", "test_evaluate:boxes_model", "--methods", "gaussian",
            "--metrics", "curves", "--out", str(out), "--quiet"]
    assert main(base + ["--targets", "0,1", "--labels", labels]) == 2
    err = capsys.readouterr().err
    assert "--targets 0,1 and --labels both name the classes" in err and len(err.strip().splitlines()) == 1
    assert main(base + ["--targets", "cats"]) == 2
    assert "expected topK (top3) or class indices (3,17)" in capsys.readouterr().err
    assert main(base + ["--targets", "top2", "--labels", labels, "--tracking-uri", uri]) == 0
    with open(out / "results.csv", newline="") as f:  # b.png's label is class 1; the model's top class is 0
        assert [(r["target"], r["rank"]) for r in csv.DictReader(f)] == [("1", "1"), ("0", "2")]
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("decam-evaluate").experiment_id])
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {"b gaussian class 1", "b gaussian class 0"}
    assert children["b gaussian class 0"].data.params["rank"] == "2"


def test_targets_travel_in_the_spec_a_ray_worker_rebuilds_the_evaluation_from(photos, tmp_path):
    from decam.workflows.evaluate import MetricSettings, evaluation_spec

    spec = evaluation_spec(load_config(None, ["model=test_evaluate:boxes_model"]), ["gaussian"],
                           metrics=MetricSettings("curves"), targets="top2")
    ev = Evaluation.from_spec(spec, tmp_path / "out")
    ev.run([photos / "a.png"])
    assert [(r.target, r.rank) for r in ev.rows()] == [(0, 1), (1, 2)]
