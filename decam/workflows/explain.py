"""Explain many images into one output folder, as ``decam explain`` does.

Each image gets an output stem that is unique in the run and the same on every rerun; ``resume``
skips images whose outputs are complete and whole (damaged ones are redone); an image that fails is
listed in ``failures.csv`` and the others go on; a full disk stops the run; with tracking, every
image also becomes an MLflow run until the store fails once. Several runs may share one output
folder: an image is claimed (a file lock, :mod:`decam.io.claims`) before its search, and a run
skips images another run has claimed or finished meanwhile. Each search checkpoints itself to
``.<stem>.search.pt`` in the folder after every generation (decam.workflows.explain_jobs): ``resume``
continues it from its last finished generation, a run without ``resume`` starts it afresh, and the
file goes once the image's outputs are written. Progress is reported through callbacks, so the
command line only parses arguments and prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from decam import interrupts
from decam.errors import ConfigError, ModelUnavailableError, OutputError
from decam.workflows.explain_jobs import (EMBEDDED_PHOTO, ExplainOutcome, Failure, Job, checkpoint_file,
                                          describe_failure, drop_checkpoint, drop_finished_checkpoints, plan_jobs)
from decam.workflows.explain_tracking import ExplainTracking

__all__ = ["EMBEDDED_PHOTO", "ExplainBatch", "ExplainOutcome", "ExplainTracking", "Failure", "Job",
           "describe_failure", "plan_jobs"]


def _decoded(image: Any) -> Any:
    """A path opened here (the driver of a Ray run ships pictures); a bad file becomes that image's error."""
    if not isinstance(image, (str, Path)):
        return image
    from decam.io.images import open_image

    try:
        return open_image(image)
    except Exception as e:
        return e


def _signature(path: Path) -> tuple[int, int, int] | None:
    """Identity of a file version (inode, mtime, size): an atomic rewrite always changes it."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ExplainBatch:
    """Images to explain with ``config`` into ``out_dir`` (an existing folder).

    ``skipped`` are the jobs ``resume`` leaves out because their outputs are complete and whole;
    ``damaged`` the ``(job, problem)`` pairs whose outputs ``resume`` found broken (truncated,
    unreadable, a map missing) and redoes; ``pending`` the jobs :meth:`run` explains (unless another
    run in the same folder claims or finishes one first). With ``resume``, a pending image whose
    search left a checkpoint continues it (when config, image and target are the same); without,
    the checkpoint is deleted once the image is claimed.
    """

    def __init__(self, config, images: Sequence[str | Path | None], out_dir: Path, *,
                 target: int | str | None = None, resume: bool = False) -> None:
        from decam.io.outputs import output_problem

        self.config, self.out_dir, self.target, self.resume = config, Path(out_dir), target, resume
        self.jobs = plan_jobs(images)
        self.skipped: list[Job] = []
        self.pending: list[Job] = []
        self.damaged: list[tuple[Job, str]] = []
        for job in self.jobs:
            problem = output_problem(self.out_dir, job.stem) if resume else "not resuming"
            if problem is None:
                self.skipped.append(job)
                continue
            self.pending.append(job)
            if resume and (self.out_dir / f"{job.stem}.json").exists():
                self.damaged.append((job, problem))
        # what each record was when we started: a new one means another run did the image meanwhile
        self._records = {job.stem: _signature(self.out_dir / f"{job.stem}.json") for job in self.pending}
        self._claims: dict[str, Any] = {}
        self._explainer = None

    @property
    def label(self) -> str:
        """What the pending work is called: the image's name, or how many images."""
        return self.pending[0].name if len(self.pending) == 1 else f"{len(self.pending)} images"

    def run(
        self,
        *,
        ray: bool = False,
        address: str | None = None,
        tracking: ExplainTracking | None = None,
        progress: Callable[[int, dict], None] | None = None,
        on_done: Callable[[Job, Any], None] | None = None,
        on_failure: Callable[[Failure, Exception], None] | None = None,
        on_elsewhere: Callable[[Job, str], None] | None = None,
    ) -> ExplainOutcome:
        """Explain the pending jobs and write each one's outputs as soon as it is done.

        ``ray`` spreads the images over the Ray cluster at ``address`` (None: a local instance);
        ``progress(index in pending, history entry)`` hears of every generation of a local search;
        ``on_elsewhere(job, why)`` of each image left to another run in the same folder.
        A broken configuration or an unavailable model stops the run, and so does a folder that
        takes no more files (:class:`~decam.errors.OutputError`); any other error fails that image only.
        """
        from decam.io import cannot_write, remove_stale_temporaries
        from decam.io.claims import remove_stale_locks
        from decam.io.failures import FailureLog
        from decam.io.outputs import FAILURES_FILE, write_explanation

        remove_stale_temporaries(self.out_dir)
        remove_stale_locks(self.out_dir)
        drop_finished_checkpoints(self.out_dir, self.skipped)
        outcome = ExplainOutcome(len(self.jobs), failures_file=self.out_dir / FAILURES_FILE)
        written = 0
        try:
            with FailureLog(self.out_dir) as log:
                for job, result in self._results(ray, address, progress, outcome, on_elsewhere):
                    try:
                        if isinstance(result, BaseException):
                            raise result
                        write_explanation(self.out_dir, job.name, result, stem=job.stem)
                        drop_checkpoint(self.out_dir, job.stem)  # the search is done: nothing to continue
                        written += 1
                        log.succeeded(job.name)
                        if tracking is not None and tracking.active:
                            tracking.log(self._scorer(), result, job.name)
                    except (ConfigError, ModelUnavailableError):
                        raise  # the whole run is misconfigured: no point in trying the next image
                    except Exception as e:
                        outcome.failures.append(describe_failure(job.name, e))
                        if cannot_write(e):
                            with contextlib.suppress(OSError):
                                log.failed(*outcome.failures[-1])
                            raise OutputError(f"{e.filename or self.out_dir}: cannot write ({e.strerror}); "
                                              f"stopped after {written} of {len(self.pending)} images (finished "
                                              "outputs are whole; make room, then rerun with --resume)") from e
                        if on_failure is not None:
                            on_failure(outcome.failures[-1], e)
                        log.failed(*outcome.failures[-1])
                        continue
                    finally:
                        self._release(job)
                    if on_done is not None:
                        on_done(job, result)
        except OSError as e:  # failures.csv itself could not be written
            if cannot_write(e):
                raise OutputError(f"{e.filename or self.out_dir}: cannot write ({e.strerror})") from e
            raise
        finally:
            for stem in list(self._claims):
                self._claims.pop(stem).release()
        outcome.tracking_error = tracking.failed if tracking is not None else None
        return outcome

    def _claim(self, job: Job, outcome: ExplainOutcome, on_elsewhere: Callable[[Job, str], None] | None) -> bool:
        """Claim ``job`` for this run; False (and why, to ``on_elsewhere``) when another run has or did it."""
        from decam.io.claims import holder, try_claim
        from decam.io.outputs import output_problem

        claim = try_claim(self.out_dir, job.stem)
        why = None
        if claim is None:
            why = f"claimed by another decam run in this folder ({holder(self.out_dir, job.stem)})"
        elif (_signature(self.out_dir / f"{job.stem}.json") != self._records[job.stem]
              and output_problem(self.out_dir, job.stem) is None):
            claim.release()
            why = "explained by another decam run in this folder meanwhile"
        if why is not None:
            outcome.elsewhere.append((job, why))
            if on_elsewhere is not None:
                on_elsewhere(job, why)
            return False
        self._claims[job.stem] = claim
        if not self.resume:  # a search an earlier run left is not continued: this one starts afresh
            drop_checkpoint(self.out_dir, job.stem)
        return True

    def _release(self, job: Job) -> None:
        claim = self._claims.pop(job.stem, None)
        if claim is not None:
            claim.release()

    def _results(self, ray: bool, address: str | None, progress: Callable[[int, dict], None] | None,
                 outcome: ExplainOutcome, on_elsewhere) -> Iterator[tuple[Job, Any]]:
        """``(job, Explanation or the exception it raised)`` as the searches finish; each job is
        claimed just before its search starts (with Ray: all at once, before they are sent)."""
        from decam.io.images import default_image

        def image(job: Job) -> Any:
            return default_image()[1] if job.image is None else job.image

        index = {job.stem: i for i, job in enumerate(self.pending)}
        if ray:
            from decam.workflows.ray_tasks import ray_explain

            mine = [job for job in self.pending if self._claim(job, outcome, on_elsewhere)]
            if not mine:
                return
            # the workers load the model; the driver only ships decoded pictures
            for i, result in ray_explain(self.config, [_decoded(image(job)) for job in mine], [self.target] * len(mine),
                                         address):
                yield mine[i], result
            return
        popsize = int(self.config.searcher.get("popsize") or self.config.batch_size)
        group = max(1, self.config.batch_size // max(popsize, 1))  # as many searches as fill a model batch
        queue = iter(self.pending)
        while True:
            chunk = []
            for job in queue:
                if self._claim(job, outcome, on_elsewhere):
                    chunk.append(job)
                    if len(chunk) == group:
                        break
            if not chunk:
                return

            def tick(k: int, entry: dict, chunk: list[Job] = chunk) -> None:
                interrupts.check()  # worker threads stop here once SIGTERM / Ctrl-C asked the run to stop
                if progress is not None:
                    progress(index[chunk[k].stem], entry)

            # several searches share each model batch; results come as each group finishes; each
            # search saves its state after every generation to its checkpoint (and continues one)
            for k, result in self._scorer().explain_many(
                    [image(job) for job in chunk], [self.target] * len(chunk), images_per_batch=len(chunk),
                    progress=tick, checkpoints=[checkpoint_file(self.out_dir, job.stem) for job in chunk]):
                yield chunk[k], result

    def _scorer(self):
        """The Explainer of this batch (with Ray, built only when tracking needs the model for scores)."""
        if self._explainer is None:
            from decam.search.explainer import Explainer

            self._explainer = Explainer(config=self.config)
        return self._explainer
