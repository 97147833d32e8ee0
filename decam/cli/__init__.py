"""Command line: ``decam explain``, ``evaluate``, ``sweep``, ``serve`` and ``list``, one module per command, on click.

Only these modules parse arguments and print; the work is in :mod:`decam.workflows`. Heavy imports
(torch, mlflow) happen inside the commands, so ``decam --help`` and ``decam list --help`` stay quick.

Exit codes: 0 success · 1 some items failed (others were written) · 2 usage, configuration or
unavailable model · 3 bad input image/target · 4 the model failed or returned non-finite logits ·
5 the MLflow tracking store failed (local outputs were written) · 6 the output folder stopped taking
files mid-run (disk full, quota) · 130 interrupted (Ctrl-C) · 143 terminated (SIGTERM).
"""

from __future__ import annotations

from decam.cli.app import main

__all__ = ["main"]
