"""A several-class explanation (one search, one map per class) as ONE MLflow run.

The run holds what the shared search has once — params, the fitness curve, ``queries``, ``seconds``,
the JSON record and ``config.yaml`` — and per class an artifact folder ``class_<index>/`` (the map's
``<stem>.saliency.npy`` / ``.saliency.png``, its ``.overlay.png`` and ``curves.png``) and metrics
prefixed the same way: ``class_<index>/insertion``, ``…/deletion``, ``…/diffauc``, ``…/probability``
and ``…/rank`` (1 = the class the search was scored on). The unprefixed ``insertion`` / ``deletion`` /
``diffauc`` stay those of the searched (first) class, so runs with one class and with several line up
in the runs table. An explanation with one class is logged as before (:mod:`decam.tracking.records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def class_prefix(target: int) -> str:
    """The artifact folder and metric prefix of class ``target``: ``class_<index>``."""
    return f"class_{int(target)}"


def is_several(exp: Any) -> bool:
    """Whether ``exp`` holds maps for more than one class (``Explanation.targets``)."""
    return len(getattr(exp, "targets", None) or []) > 1


def score_map(explainer, image, saliency: np.ndarray, target: int, n_steps: int | None = None):
    """Insertion/deletion :class:`~decam.evaluation.metrics.CurveScores` of one map of ``image`` through
    the explainer's fast forward (the same precision and layout as its search), with the RISE reference
    substrates placed by the model's normalization."""
    from decam.evaluation.metrics import N_STEPS, insertion_deletion
    from decam.models import ModelRunner

    runner = ModelRunner(explainer.forward, explainer.config.batch_size)
    return insertion_deletion(runner, image.to(explainer.device), saliency, target, n_steps=n_steps or N_STEPS,
                              batch_size=runner.batch_size, normalization=explainer.model.normalization)


def score_targets(explainer, exp, n_steps: int | None = None) -> dict[int, Any]:
    """Every class's map of ``exp`` scored as :func:`score_map` scores one: ``{class index: CurveScores}``,
    in ``exp.targets`` order (the searched class first)."""
    return {t.target: score_map(explainer, exp.image, t.saliency, t.target, n_steps) for t in exp.targets}


def class_metrics(exp, scores: Mapping[int, Any]) -> dict[str, float]:
    """``class_<index>/rank`` and ``/probability`` for every class of ``exp``, and ``/insertion``,
    ``/deletion``, ``/diffauc`` for those ``scores`` holds."""
    out: dict[str, float] = {}
    for rank, t in enumerate(exp.targets, start=1):
        prefix = class_prefix(t.target)
        out[f"{prefix}/rank"] = float(rank)
        out[f"{prefix}/probability"] = float(t.probability)
        s = scores.get(t.target)
        if s is not None:
            out.update({f"{prefix}/insertion": s.insertion, f"{prefix}/deletion": s.deletion,
                        f"{prefix}/diffauc": s.diff})
    return out


def write_class_files(folder: str | Path, image_id: str, exp, scores: Mapping[int, Any]) -> Path:
    """The files of a several-class run in ``folder``: per class ``class_<index>/`` with the map
    (``<stem>.saliency.npy``, ``.saliency.png``), its overlay and, when scored, ``curves.png``; and
    ``<stem>.json``, the explanation's record listing every class with its files and scores."""
    from decam.io import safe_stem, save_json
    from decam.io.outputs import explanation_record, map_files
    from decam.tracking.charts import curves_plot

    folder, stem = Path(folder), safe_stem(image_id)
    record = explanation_record(image_id, exp)
    record["targets"] = []
    for rank, t in enumerate(exp.targets, start=1):
        sub = class_prefix(t.target)
        files = map_files(stem, t.saliency, exp.image)
        for name, save, data in files:
            save(folder / sub / name, data)
        entry = {"target": t.target, "rank": rank, "class_name": t.class_name, "score": t.score,
                 "probability": t.probability, "saliency": f"{sub}/{files[0][0]}", "saliency_png": f"{sub}/{files[1][0]}"}
        s = scores.get(t.target)
        if s is not None:
            curves_plot(folder / sub / "curves.png", s.insertion_curve, s.deletion_curve,
                        f"{stem}, {t.class_name} (class {t.target}): DiffAUC {s.diff:.3f}")
            entry.update(insertion=s.insertion, deletion=s.deletion, diffauc=s.diff)
        record["targets"].append(entry)
    save_json(folder / f"{stem}.json", record)
    return folder
