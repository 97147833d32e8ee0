"""MLflow: one client per store, runs for explanations, evaluations and studies, and their charts.

The only package that imports mlflow, and only when tracking is used.
"""

from decam.tracking.classes import class_metrics, class_prefix, score_targets
from decam.tracking.records import (SERIES, explanation_metrics, flatten, history_rows, log_evaluation,
                                    log_explanation, log_record, run_params, score_explanation, write_run_files)
from decam.tracking.store import (DEFAULT_EXPERIMENT, PARENT_TAG, Tracker, TrackingError, bound_http_timeouts,
                                  store_errors)

__all__ = ["DEFAULT_EXPERIMENT", "PARENT_TAG", "SERIES", "Tracker", "TrackingError", "bound_http_timeouts",
           "class_metrics", "class_prefix", "explanation_metrics", "flatten", "history_rows", "log_evaluation",
           "log_explanation", "log_record", "run_params", "score_explanation", "score_targets", "store_errors",
           "write_run_files"]
