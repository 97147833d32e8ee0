"""``decam sweep``: run (or resume) a study as one MLflow parent run with a child per (configuration, image).

Children carry a ``decam.key`` tag hashing their resolved config and image contents; rerunning a
study reuses its parent and skips finished children, so an interrupted sweep loses at most the run
in flight. Sweeps of one study may run at once into one store: the parent is found or created
under a lock, and each child is claimed (a file lock beside a SQLite store, else in ``out_dir``)
before it runs, so every child runs once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from decam.errors import DecamError
from decam.io import safe_stem
from decam.io.claims import FileLock, lock_path
from decam.tracking import PARENT_TAG, Tracker, log_explanation, score_explanation
from decam.workflows.study import Child, Study, _digest, base_params, load_study, plan, study_key
from decam.workflows.study_summary import (KEY_TAG, STUDY_KEY_TAG, STUDY_TAG, StudyResult, collect_rows,
                                          log_summary, summarize, summary_markdown)


def _parent(tracker: Tracker, study: Study, key: str) -> str:
    """The study's parent run, found by its key or created; under the store's lock, so two sweeps of
    one study started together share one parent."""
    with tracker.lock(f"study-{key}"):
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


class _Unshared:
    """The claim of a child when there is nowhere to share claims: never contested."""

    def release(self) -> None:
        pass


class _Runner:
    """Runs a study's children under cross-process claims: a child is claimed (a file lock named by
    the parent and the child's key) before it runs, so sweeps of one study sharing a store never run
    a child twice; one Explainer at a time (children come configuration by configuration)."""

    def __init__(self, study: Study, tracker: Tracker, parent: str, claims: Path | None,
                 out_dir: str | Path | None, progress: Callable[[str, Child, dict], None] | None) -> None:
        self.study, self.tracker, self.parent, self.claims = study, tracker, parent, claims
        self.out_dir, self.progress = out_dir, progress
        self.result = StudyResult(parent, [], [])
        self._explainer: tuple[str, Any] | None = None

    def tell(self, event: str, child: Child, **info: Any) -> None:
        if self.progress:
            self.progress(event, child, info)

    def claim(self, child: Child, wait: bool = False) -> FileLock | _Unshared | None:
        """``child``'s claim, or None when another sweep holds it (``wait``: until it lets go)."""
        if self.claims is None:
            return _Unshared()
        lock = FileLock(lock_path(self.claims, f"decam-{self.parent[:12]}-{child.key}"))
        return lock if lock.acquire(blocking=wait) else None

    def finished(self, child: Child) -> bool:
        """Whether a finished run of ``child`` exists; unfinished ones (their claim is ours) are deleted."""
        runs = self.tracker.search(f"tags.`{PARENT_TAG}` = '{self.parent}' and tags.`{KEY_TAG}` = '{child.key}'")
        keep = next((r.info.run_id for r in runs if r.info.status == "FINISHED"), None)
        for run in runs:
            if run.info.run_id != keep:
                self.tracker.delete_run(run.info.run_id)
        return keep is not None

    def attempt(self, child: Child, claim: FileLock | _Unshared) -> None:
        """Run ``child`` unless another sweep finished it meanwhile; then let go of its claim."""
        try:
            if self.finished(child):
                self.result.skipped += 1
                self.tell("skip", child)
                return
            self.run(child)
        finally:
            claim.release()

    def close(self) -> None:
        if self._explainer is not None:
            self._explainer[1].close()
            self._explainer = None

    def run(self, child: Child) -> None:
        from decam.search.explainer import Explainer

        ck = _digest(OmegaConf.to_container(child.config))
        if self._explainer is None or self._explainer[0] != ck:
            self.close()  # the last configuration's model copies go before the next one's come
            self._explainer = (ck, Explainer(config=child.config))
        explainer = self._explainer[1]
        try:
            exp = explainer.explain(child.image, self.study.target)
        except DecamError as e:
            self.result.failures.append((str(child.image), e))
            self.tell("fail", child, error=str(e))
            return
        scores = score_explanation(explainer, exp, self.study.n_steps)
        folder = Path(self.out_dir) / f"{safe_stem(child.image_id)}-{child.key[:8]}" if self.out_dir else None
        label = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in child.point.items())
        log_explanation(self.tracker, exp, child.image_id, scores, parent=self.parent, folder=folder,
                        run_name=f"{Path(child.image_id).stem} {label}".strip(),
                        tags={KEY_TAG: child.key, STUDY_TAG: self.study.name})
        self.result.ran += 1
        self.tell("done", child, diffauc=scores.diff)


def run_study(
    study: Study,
    tracker: Tracker,
    out_dir: str | Path | None = None,
    progress: Callable[[str, Child, dict], None] | None = None,
) -> StudyResult:
    """Run (or resume) ``study``: one child run per unfinished (configuration, image), then the summary.

    ``progress(event, child, info)`` is called per child with event ``skip``, ``done`` or ``fail``,
    and ``wait`` for a child another sweep of the study is running (this one waits for it at the
    end, and runs it if that sweep did not finish it). The parent ends FINISHED, KILLED (Ctrl-C,
    SIGTERM) or FAILED; it is never left RUNNING on the way out.
    """
    children = plan(study)
    key = study_key(study, children)
    with tracker.lifecycle(lambda: _parent(tracker, study, key)) as parent:
        claims = tracker.lock_dir or (Path(out_dir) if out_dir else None)
        runner = _Runner(study, tracker, parent, claims, out_dir, progress)
        with contextlib.closing(runner):
            result = _run_children(tracker, runner, children)
        result.rows = collect_rows(tracker, parent, children)
        result.summary = summarize(result.rows, study.keys)
        log_summary(tracker, parent, study, result, out_dir)
    return result


def _run_children(tracker: Tracker, runner: _Runner, children: list[Child]) -> StudyResult:
    """Every child not finished yet, claimed first; then those another sweep held, once it lets go."""
    parent = runner.parent
    by_key = {c.key: c for c in children}
    runs: dict[str, list] = {}
    for run in tracker.children(parent):
        runs.setdefault(run.data.tags.get(KEY_TAG), []).append(run)
    done = {key for key, found in runs.items() if any(r.info.status == "FINISHED" for r in found)}
    for key, found in runs.items():  # interrupted or duplicate runs, unless another sweep is on them
        if key in by_key and (len(found) > 1 or key not in done) and (claim := runner.claim(by_key[key])):
            runner.finished(by_key[key])  # keeps one finished run, deletes the rest
            claim.release()
    waiting = []
    for child in children:
        if child.key in done:
            runner.result.skipped += 1
            runner.tell("skip", child)
        elif (claim := runner.claim(child)) is None:
            waiting.append(child)
            runner.tell("wait", child)
        else:
            runner.attempt(child, claim)
    for child in waiting:  # claimed by another sweep: done by it, or (if it stopped) here
        runner.attempt(child, runner.claim(child, wait=True))
    return runner.result


__all__ = ["Study", "Child", "StudyResult", "load_study", "plan", "run_study", "summarize", "summary_markdown"]
