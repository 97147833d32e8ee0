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
