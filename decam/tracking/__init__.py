"""MLflow: one client per store, runs for explanations, evaluations and studies, and their charts.

The only package that imports mlflow, and only when tracking is used.
"""

from decam.tracking.records import (DEFAULT_EXPERIMENT, PARENT_TAG, SERIES, Tracker, TrackingError, flatten,
                                    history_rows, log_evaluation, log_explanation, log_record, run_params,
                                    score_explanation, store_errors, write_run_files)

__all__ = ["DEFAULT_EXPERIMENT", "PARENT_TAG", "SERIES", "Tracker", "TrackingError", "flatten", "history_rows",
           "log_evaluation", "log_explanation", "log_record", "run_params", "score_explanation", "store_errors",
           "write_run_files"]
