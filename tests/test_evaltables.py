"""The evaluation summary compares methods on the same images: paired differences and win counts."""

from __future__ import annotations

from decam.evaluation.tables import summary_table
from decam.workflows.evaluate import Row


def row(image: str, method: str, diff: float) -> Row:
    return Row(image, image, method, 0, "c", 0.5, diff + 0.1, 0.1, diff, 1.0, 10)


def test_paired_difference_and_wins_against_decam():
    diffs = {"decam": [0.50, 0.40, 0.30], "rise": [0.30, 0.30, 0.40]}
    rows = [row(f"im{i}", m, d) for m, ds in diffs.items() for i, d in enumerate(ds)]
    table = {entry["method"]: entry for entry in summary_table(rows, ["decam", "rise"])}
    assert table["rise"]["decam better"] == "2/3"
    # differences 0.2, 0.1, -0.1: mean +0.067, s.e. = std(ddof=1) / sqrt(3) = 0.153 / 1.732 = 0.088 (×100)
    assert table["rise"]["decam − method (s.e.)"] == "+6.7 ± 8.8"
    assert table["decam"]["decam − method (s.e.)"] == "—"
    assert table["decam"]["DiffAUC"] == "40.0 ± 10.0"


def test_paired_table_counts_wins_in_each_metrics_direction():
    from decam.evaluation.metrics.suite import Column
    from decam.evaluation.tables import paired_table

    cols = [Column("mufidelity", "MuFidelity", True, 1.0, 2), Column("road_morf", "ROAD MoRF", False)]
    rows = []
    for i in range(3):
        rows.append(Row(f"im{i}", f"im{i}", "decam", 0, "c", 0.5, 0.6, 0.1, 0.5, 1.0, 10,
                        scores={"mufidelity": 0.5, "road_morf": -0.3}))
        rows.append(Row(f"im{i}", f"im{i}", "rise", 0, "c", 0.5, 0.6, 0.2, 0.4, 1.0, 10,
                        scores={"mufidelity": 0.6 if i == 0 else 0.2, "road_morf": -0.1}))
    (entry,) = paired_table(rows, ["decam", "rise"], cols)
    assert entry["MuFidelity ↑"].endswith("(2/3)")  # decam higher on two images
    assert entry["ROAD MoRF ↓"].endswith("(3/3)")  # decam lower (better) on all three
    assert entry["deletion ↓"].endswith("(3/3)") and entry["DiffAUC ↑"].startswith("+10.0")
    assert paired_table([r for r in rows if r.method == "rise"], ["rise"], cols) == []


def test_several_classes_pair_by_image_and_class_and_split_searched_from_other_classes():
    from decam.evaluation.tables import rank_groups, summary_markdown

    def ranked(image, method, target, rank, diff):
        return Row(image, image, method, target, "c", 0.5, diff + 0.1, 0.1, diff, 1.0, 10, rank=rank)

    # decam is better on every image's first class and worse on every second class
    rows = [ranked(f"im{i}", m, t, rank, d) for i in range(3) for m, t, rank, d in (
        ("decam", 5, 1, 0.6), ("rise", 5, 1, 0.4), ("decam", 7, 2, 0.2), ("rise", 7, 2, 0.5))]
    groups = dict(rank_groups(rows))
    assert set(groups) == {"Searched class (rank 1)", "Other class (rank 2)"}
    searched = {e["method"]: e for e in summary_table(groups["Searched class (rank 1)"], ["decam", "rise"])}
    others = {e["method"]: e for e in summary_table(groups["Other class (rank 2)"], ["decam", "rise"], unit="maps")}
    assert searched["rise"]["decam better"] == "3/3" and searched["rise"]["decam − method (s.e.)"] == "+20.0 ± 0.0"
    assert others["rise"]["decam better"] == "0/3" and others["rise"]["decam − method (s.e.)"] == "-30.0 ± 0.0"
    assert others["rise"]["maps"] == "3"
    # pooled over classes, pairs are still (image, class): 6 pairs, never decam's class 5 against RISE's class 7
    assert summary_table(rows, ["decam", "rise"])[1]["decam better"] == "3/6"
    summary = summary_markdown(rows, ["decam", "rise"], "m", [])
    assert "3 images, 2 classes each" in summary and summary.index("## Searched class") < summary.index("## Other")
    assert rank_groups(rows[:2]) == [(None, rows[:2])]
