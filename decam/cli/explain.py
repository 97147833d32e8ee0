"""``decam explain``: arguments in, :class:`decam.workflows.explain.ExplainBatch` run, one line per image out."""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING

import click

from decam.cli.options import (RunOptions, TrackingOptions, debug_option, debugging, output_folder, ray_address,
                               ray_option, run_options, tracking_options)

if TYPE_CHECKING:
    from decam.workflows.explain import ExplainTracking


def _tracking(options: TrackingOptions, quiet: bool) -> ExplainTracking:
    """``--mlflow``: an ExplainTracking that prints each run (unless ``quiet``) and the store's first failure."""
    from decam.workflows.explain import ExplainTracking

    def logged(name: str, scores, run_id: str, tracker) -> None:
        if quiet:
            return
        if isinstance(scores, dict):  # several classes: {class index: scores}
            diffs = ", ".join(f"class {t} {100 * s.diff:.1f}" for t, s in scores.items())
        else:
            diffs = f"{100 * scores.diff:.1f}"
        print(f"{name}: DiffAUC {diffs} → MLflow run {run_id} (experiment {tracker.experiment!r}, {tracker.uri})")

    def failed(error: Exception) -> None:
        print(f"decam: warning: {' '.join(str(error).split())} (local outputs are kept; "
              "no more tracking in this run)", file=sys.stderr)

    return ExplainTracking(options.tracking_uri, options.experiment or "decam", logged, failed)


@click.command("explain", short_help="explain images (no IMAGE: an embedded photo)")
@click.argument("items", nargs=-1, type=click.Path(), metavar="[IMAGE|key=value]...")
@click.option("--target", metavar="CLASS", help="class index to explain (default: top-1); several classes "
              "share one search: 3,17 or top3")
@click.option("--out", default="decam-out", metavar="DIR", help="output folder (default: decam-out)")
@run_options("total model queries (decides the generations)")
@click.option("--quiet", is_flag=True, help="no progress bar or summary lines")
@click.option("--resume", is_flag=True,
              help="skip images whose outputs in --out are complete and continue interrupted searches from "
              "their last generation (e.g. after an interrupted run)")
@tracking_options("log every image as an MLflow run (or tracking.enabled=true)", "decam")
@ray_option
@debug_option
def explain(items: tuple[str, ...], target: str | None, out: str, run: RunOptions, quiet: bool, resume: bool,
            tracking: TrackingOptions, ray: str | None) -> int:
    """Explain image files and folders (none: an embedded photo) into --out.

    Arguments are image files or folders, and config overrides such as searcher.CR=0.5, in any
    order. A failed image is reported and listed in failures.csv; the others go on.
    """
    from decam.models import tune_allocator

    tune_allocator()  # before plugins and the model start threads: see decam.models.allocator

    from decam.config import load_config
    from decam.cli.progress import search_progress
    from decam.workflows.explain import ExplainBatch
    from decam.workflows.inputs import expand_images, split_items

    image_args, overrides = split_items(items)
    tracking, overrides = tracking.take_overrides(overrides)
    cfg = load_config(run.config, overrides + run.overrides())  # validated before any model work
    images = expand_images(image_args) if image_args else [None]
    out_dir = output_folder(out)
    batch = ExplainBatch(cfg, images, out_dir, target=target, resume=resume)
    if not quiet:
        for job in batch.skipped:
            print(f"{job.name}: outputs complete, skipped (--resume)")
        for job, problem in batch.damaged:
            print(f"{job.name}: outputs in {out_dir} are not whole ({problem}), redone")

    def done(job, result) -> None:
        if quiet:
            return
        classes = ", ".join(f"{t.class_name} (class {t.target}, p={t.probability:.3f})" for t in result.targets)
        where = f"{job.stem}.overlay.png" if len(result.targets) == 1 else f"{job.stem}.<class>.overlay.png"
        print(f"{job.name}: {classes} {result.queries} queries, {result.seconds:.1f} s → {out_dir / where}")

    def elsewhere(job, why: str) -> None:
        if not quiet:
            print(f"{job.name}: {why}, skipped")

    def failed(failure, error: Exception) -> None:
        if debugging():
            traceback.print_exception(error)
        print(f"decam: error: {failure.error}", file=sys.stderr)

    bar = search_progress(batch.label, cfg, quiet, len(batch.pending)) if batch.pending else None
    try:
        outcome = batch.run(ray=ray is not None, address=ray_address(ray),
                            tracking=_tracking(tracking, quiet) if tracking.enabled else None,
                            progress=bar, on_done=done, on_failure=failed, on_elsewhere=elsewhere)
    finally:
        if bar is not None:
            bar.close()
    if outcome.failures:
        print(f"decam: {len(outcome.failures)} of {outcome.total} images failed, listed in {outcome.failures_file}",
              file=sys.stderr)
    return outcome.exit_code
