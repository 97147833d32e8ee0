"""Explain many images into one output folder, as ``decam explain`` does.

Each image gets an output stem that is unique in the run and the same on every rerun; ``resume``
skips images whose outputs are complete; an image that fails is listed in ``failures.csv`` and the
others go on; with tracking, every image also becomes an MLflow run until the store fails once.
Progress is reported through callbacks, so the command line only parses arguments and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from decam.errors import EXIT_PARTIAL, ConfigError, DecamError, ModelUnavailableError

EMBEDDED_PHOTO = "coffee"
"""The name (and output stem) of the embedded photo, explained when no image is given."""


@dataclass(frozen=True)
class Job:
    """One image: its name as given, its path (None: the embedded photo) and its output stem."""

    name: str
    image: Path | None
    stem: str


class Failure(NamedTuple):
    """An image that failed, as a row of ``failures.csv``: its name, its exit code alone, one line naming it."""

    image: str
    exit_code: int
    error: str


def plan_jobs(images: Sequence[str | Path | None]) -> list[Job]:
    """One job per image, in order; stems are made unique in that order, so a rerun finds the same ones."""
    from decam.io.outputs import unique_stem

    used: set[str] = set()
    jobs = []
    for image in images:
        name = EMBEDDED_PHOTO if image is None else str(image)
        jobs.append(Job(name, None if image is None else Path(image), unique_stem(name, used)))
    return jobs


def describe_failure(name: str, error: Exception) -> Failure:
    """The failure row for an image that raised ``error``: decam's exit code for it and a one-line message."""
    msg = " ".join(str(error).split())
    if isinstance(error, DecamError):
        code = error.exit_code
    elif isinstance(error, OSError):
        code, msg = EXIT_PARTIAL, f"cannot write outputs ({msg})"
    else:  # a defect in decam or a plugin, not in the input
        code, msg = EXIT_PARTIAL, f"unexpected {type(error).__name__}: {msg} (--debug shows the traceback)"
    return Failure(name, code, msg if msg.startswith(name) else f"{name}: {msg}")


class ExplainTracking:
    """One MLflow run per explained image, with its insertion / deletion scores.

    The first failure of the store goes to ``on_failed`` and ends tracking for the rest of the run:
    the local outputs matter more, and a dead store would fail (slowly) for every image.
    """

    def __init__(
        self,
        uri: str | None = None,
        experiment: str = "decam",
        on_logged: Callable[[str, Any, str, Any], None] | None = None,
        on_failed: Callable[[DecamError], None] | None = None,
    ) -> None:
        self.uri, self.experiment = uri, experiment
        self.on_logged, self.on_failed = on_logged, on_failed
        self.tracker = None
        self.failed: DecamError | None = None

    @property
    def active(self) -> bool:
        return self.failed is None

    def log(self, explainer, exp, name: str) -> str | None:
        """Score ``exp`` with ``explainer``'s model and log it; the run id (None once the store has failed).

        ``on_logged(name, scores, run_id, tracker)`` hears of each run.
        """
        if self.failed is not None:
            return None
        from decam.tracking import Tracker, TrackingError, log_explanation, score_explanation

        scores = score_explanation(explainer, exp)
        try:
            self.tracker = self.tracker or Tracker(self.uri, self.experiment)
            run_id = log_explanation(self.tracker, exp, name, scores)
        except TrackingError as e:
            self.failed = e
            if self.on_failed is not None:
                self.on_failed(e)
            return None
        if self.on_logged is not None:
            self.on_logged(name, scores, run_id, self.tracker)
        return run_id


@dataclass
class ExplainOutcome:
    """What a batch came to: how many images it had, which failed, and whether tracking failed."""

    total: int
    failures: list[Failure] = field(default_factory=list)
    failures_file: Path | None = None
    tracking_error: DecamError | None = None

    @property
    def exit_code(self) -> int:
        """0; 1 when some images failed; every image failed: the worst of their codes; else the tracking error's."""
        if self.failures:
            if len(self.failures) < self.total:
                return EXIT_PARTIAL
            return max(f.exit_code for f in self.failures)
        return self.tracking_error.exit_code if self.tracking_error is not None else 0


def _decoded(image: Any) -> Any:
    """A path opened here (the driver of a Ray run ships pictures); a bad file becomes that image's error."""
    if not isinstance(image, (str, Path)):
        return image
    from decam.io.images import open_image

    try:
        return open_image(image)
    except Exception as e:
        return e


class ExplainBatch:
    """Images to explain with ``config`` into ``out_dir`` (an existing folder).

    ``skipped`` are the jobs ``resume`` leaves out because their outputs are complete; ``pending``
    the ones :meth:`run` explains.
    """

    def __init__(self, config, images: Sequence[str | Path | None], out_dir: Path, *,
                 target: int | str | None = None, resume: bool = False) -> None:
        from decam.io.outputs import is_complete

        self.config, self.out_dir, self.target = config, Path(out_dir), target
        self.jobs = plan_jobs(images)
        done = {job.stem for job in self.jobs if resume and is_complete(self.out_dir, job.stem)}
        self.skipped = [job for job in self.jobs if job.stem in done]
        self.pending = [job for job in self.jobs if job.stem not in done]
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
    ) -> ExplainOutcome:
        """Explain the pending jobs and write each one's outputs as soon as it is done.

        ``ray`` spreads the images over the Ray cluster at ``address`` (None: a local instance);
        ``progress(image index, history entry)`` hears of every generation of a local search.
        A broken configuration or an unavailable model stops the run; any other error fails that
        image only.
        """
        from decam.io import remove_stale_temporaries
        from decam.io.outputs import FAILURES_FILE, write_failures, write_explanation

        remove_stale_temporaries(self.out_dir)
        write_failures(self.out_dir, [])  # a failures file from an earlier run would describe that run
        outcome = ExplainOutcome(len(self.jobs), failures_file=self.out_dir / FAILURES_FILE)
        if self.pending:  # after resume's skips: no model load when all is done
            for i, result in self._results(ray, address, progress):
                job = self.pending[i]
                try:
                    if isinstance(result, BaseException):
                        raise result
                    write_explanation(self.out_dir, job.name, result, stem=job.stem)
                    if tracking is not None and tracking.active:
                        tracking.log(self._scorer(), result, job.name)
                except (ConfigError, ModelUnavailableError):
                    raise  # the whole run is misconfigured: no point in trying the next image
                except Exception as e:
                    outcome.failures.append(describe_failure(job.name, e))
                    if on_failure is not None:
                        on_failure(outcome.failures[-1], e)
                    write_failures(self.out_dir, outcome.failures)
                    continue
                if on_done is not None:
                    on_done(job, result)
        outcome.tracking_error = tracking.failed if tracking is not None else None
        return outcome

    def _results(self, ray: bool, address: str | None,
                 progress: Callable[[int, dict], None] | None) -> Iterable[tuple[int, Any]]:
        """``(index in pending, Explanation or the exception it raised)`` as the searches finish."""
        from decam.io.images import default_image

        images = [default_image()[1] if job.image is None else job.image for job in self.pending]
        targets = [self.target] * len(images)
        if ray:
            from decam.workflows.ray_tasks import ray_explain

            # the workers load the model; the driver only ships decoded pictures
            return ray_explain(self.config, [_decoded(image) for image in images], targets, address)
        # several searches share each model batch; results come as each group finishes
        return self._scorer().explain_many(images, targets, progress=progress)

    def _scorer(self):
        """The Explainer of this batch (with Ray, built only when tracking needs the model for scores)."""
        if self._explainer is None:
            from decam.search.explainer import Explainer

            self._explainer = Explainer(config=self.config)
        return self._explainer
