"""``decam sweep``: run (or resume) a study as one MLflow parent run with a child per (configuration, image).

Children carry a ``decam.key`` tag hashing their resolved config and image contents; rerunning a
study reuses its parent and skips finished children, so an interrupted sweep loses at most the run
in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from decam.errors import DecamError
from decam.io import safe_stem
from decam.tracking import Tracker, log_explanation, score_explanation
from decam.workflows.study import Child, Study, _digest, base_params, load_study, plan, study_key
from decam.workflows.study_summary import (KEY_TAG, STUDY_KEY_TAG, STUDY_TAG, StudyResult, collect_rows,
                                          log_summary, summarize, summary_markdown)


def _parent(tracker: Tracker, study: Study, key: str) -> str:
    found = tracker.search(f"tags.`{STUDY_KEY_TAG}` = '{key}'")
    if found:
        run_id = found[0].info.run_id
        tracker.reopen(run_id)
        return run_id
    run_id = tracker.start_run(study.name, {STUDY_TAG: study.name, STUDY_KEY_TAG: key})
    params = {"study.keys": ",".join(study.keys) or "-", "study.configurations": len(study.points),
              "study.n_steps": study.n_steps, "study.target": study.target if study.target is not None else "top-1"}
    params.update({f"base.{k}": v for k, v in base_params(study.base).items()})
    if study.grid:
        params.update({f"grid.{k}": str(sorted({p[k] for p in study.points}, key=str)) for k in study.keys})
    tracker.log_params(run_id, params)
    return run_id


def run_study(
    study: Study,
    tracker: Tracker,
    out_dir: str | Path | None = None,
    progress: Callable[[str, Child, dict], None] | None = None,
) -> StudyResult:
    """Run (or resume) ``study``: one child run per unfinished (configuration, image), then the summary.

    ``progress(event, child, info)`` is called per child with event ``skip``, ``done`` or ``fail``.
    The parent ends FINISHED, KILLED (Ctrl-C) or FAILED; it is never left RUNNING on the way out.
    """
    from decam.search.explainer import Explainer

    children = plan(study)
    parent = _parent(tracker, study, study_key(study, children))
    result = StudyResult(parent, [], [])
    with tracker.ending(parent):
        done = {}
        for run in tracker.children(parent):
            key = run.data.tags.get(KEY_TAG)
            if run.info.status == "FINISHED" and key not in done:
                done[key] = run
            else:  # interrupted or duplicate: it will be redone
                tracker.delete_run(run.info.run_id)
        explainers: dict[str, Explainer] = {}
        for child in children:
            if child.key in done:
                result.skipped += 1
                if progress:
                    progress("skip", child, {})
                continue
            ck = _digest(OmegaConf.to_container(child.config))
            explainer = explainers.get(ck) or explainers.setdefault(ck, Explainer(config=child.config))
            try:
                exp = explainer.explain(child.image, study.target)
            except DecamError as e:
                result.failures.append((str(child.image), e))
                if progress:
                    progress("fail", child, {"error": str(e)})
                continue
            scores = score_explanation(explainer, exp, study.n_steps)
            folder = Path(out_dir) / f"{safe_stem(child.image_id)}-{child.key[:8]}" if out_dir else None
            label = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in child.point.items())
            log_explanation(tracker, exp, child.image_id, scores, parent=parent, folder=folder,
                            run_name=f"{Path(child.image_id).stem} {label}".strip(),
                            tags={KEY_TAG: child.key, STUDY_TAG: study.name})
            result.ran += 1
            if progress:
                progress("done", child, {"diffauc": scores.diff})
        result.rows = collect_rows(tracker, parent, children)
        result.summary = summarize(result.rows, study.keys)
        log_summary(tracker, parent, study, result, out_dir)
    return result


__all__ = ["Study", "Child", "StudyResult", "load_study", "plan", "run_study", "summarize", "summary_markdown"]
