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
