"""``decam explain --mlflow``: one MLflow run per explained image, until the store fails once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from decam.errors import DecamError


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

        An explanation of several classes is one run with every class's map scored
        (:mod:`decam.tracking.classes`). ``on_logged(name, scores, run_id, tracker)`` hears of each
        run; ``scores`` is the CurveScores of the one class, or ``{class index: CurveScores}``.
        """
        if self.failed is not None:
            return None
        from decam.tracking import Tracker, TrackingError, log_explanation, score_explanation, score_targets

        several = len(getattr(exp, "targets", None) or []) > 1
        scores = score_targets(explainer, exp) if several else score_explanation(explainer, exp)
        try:
            self.tracker = self.tracker or Tracker(self.uri, self.experiment)
            run_id = log_explanation(self.tracker, exp, name, scores)
        except (TrackingError, OSError) as e:  # OSError: the run's files could not be staged (a full /tmp)
            self.failed = e if isinstance(e, TrackingError) else TrackingError(f"tracking: cannot stage run files ({e})")
            if self.on_failed is not None:
                self.on_failed(self.failed)
            return None
        if self.on_logged is not None:
            self.on_logged(name, scores, run_id, self.tracker)
        return run_id
