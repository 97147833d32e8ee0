"""``decam evaluate``: score explanation methods on the same images (:mod:`decam.workflows.evaluate`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from decam.cli.options import (RunOptions, TrackingOptions, debug_option, output_folder, ray_address, ray_option,
                               run_options, tracking_options)
from decam.errors import EXIT_PARTIAL, ConfigError, InputError

DEFAULT_METHODS = "decam,gradcam,gradcampp,fullgrad,ig,rise,lime,random"
SUBSTRATE_CHOICES = click.Choice(["zero", "black", "blur", "mean"])


def _track(tracking: TrackingOptions, evaluation, cfg, out: str) -> int | None:
    """Log the comparison to MLflow (one parent run, a child per image and method); a failing
    store is a one-line warning and its exit code (5), the local outputs stay."""
    from omegaconf import OmegaConf

    from decam.tracking import Tracker, TrackingError, flatten, log_evaluation

    params = flatten(OmegaConf.to_container(cfg)) | flatten({"metrics": evaluation.settings.to_dict()})
    try:
        tracker = Tracker(tracking.tracking_uri, tracking.experiment or "decam-evaluate")
        log_evaluation(tracker, evaluation.rows(), params=params, folder=out)
    except TrackingError as e:
        print(f"decam: warning: {e}; local outputs are in {out}", file=sys.stderr)
        return e.exit_code
    return None


@click.command("evaluate", short_help="compare decam with other methods on a suite of faithfulness metrics")
@click.argument("items", nargs=-1, required=True, type=click.Path(), metavar="IMAGE|key=value...")
@click.option("--methods", default=DEFAULT_METHODS, metavar="LIST",
              help=f"comma-separated methods (decam list shows them; default: {DEFAULT_METHODS}); LABEL=METHOD "
                   "runs a method again under its own label and options (riseblur=rise riseblur.fill=blur)")
@click.option("--metrics", "metric_names", default="default", metavar="LIST",
              help="comma-separated metrics: curves (insertion/deletion, always), swapped (DiffAUC with insertion "
                   "from black, deletion to blur), mufidelity, road, sanity, stability; 'default' = curves,swapped,"
                   "mufidelity,road; 'all' adds sanity and stability, which re-run every method")
@click.option("--insertion-from", "insertion", type=SUBSTRATE_CHOICES, default="blur", show_default=True,
              help="insertion's starting substrate (blur: the RISE reference blur of the normalized input)")
@click.option("--deletion-to", "deletion", type=SUBSTRATE_CHOICES, default="zero", show_default=True,
              help="deletion's substrate (zero: 0 in the normalized input, the normalization's mean colour)")
@click.option("--labels", metavar="CSV", type=click.Path(),
              help="CSV with file,class_index columns giving each image's target (default: top-1)")
@click.option("--targets", "targets", metavar="SPEC",
              help="explain several classes per image: topK (the model's K most likely) or class indices "
                   "(3,17); decam finds them all with ONE search scored on the first, the other methods run "
                   "once per class; each class gets its own rows (rank 1 = the first) and the shared search's "
                   "queries and seconds count on decam's rank-1 row only. With --labels only topK: the label's "
                   "class first, then the model's most likely others")
@click.option("--out", default="decam-eval", metavar="DIR", help="output folder (default: decam-eval)")
@click.option("--limit", type=int, metavar="N", help="use the first N images only")
@click.option("--gallery", type=int, default=8, metavar="N", help="images in gallery.png (default: 8)")
@run_options("model queries per image for decam and every method with a budget (RISE, LIME, Sobol, ...; "
             "METHOD.budget=N overrides one)")
@click.option("--quiet", is_flag=True, help="no progress bar or summary table")
@tracking_options("log the comparison to MLflow (or tracking.enabled=true)", "decam-evaluate")
@ray_option
@debug_option
def evaluate(items: tuple[str, ...], methods: str, metric_names: str, insertion: str, deletion: str,
             labels: str | None, targets: str | None, out: str, limit: int | None, gallery: int, run: RunOptions, quiet: bool,
             tracking: TrackingOptions, ray: str | None) -> int:
    """Score explanation methods on the same images with insertion / deletion AUC (RISE reference
    substrates by default), DiffAUC with swapped substrates, MuFidelity and ROAD; --metrics all adds the
    sanity checks and stability over seeds.

    Arguments are image files or folders and key=value settings, in any order: a key configures
    decam (generations=100) or, prefixed with a method's name, that method (rise.n_masks=2000,
    gradcam.target_layer=net.layer4).
    """
    from decam.models import tune_allocator

    tune_allocator()  # before plugins and the model start threads: see decam.models.allocator

    from decam.config import load_config
    from decam.evaluation.building import parse_methods, with_budget
    from decam.workflows.evaluate import MetricSettings, read_labels, split_method_options
    from decam.workflows.inputs import expand_images, split_items

    image_args, overrides = split_items(items)
    if not image_args:
        raise InputError("decam evaluate needs image files or a folder")
    tracking, overrides = tracking.take_overrides(overrides)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    method_labels = parse_methods(names)  # unknown names fail here, with suggestions, before the model loads
    overrides, options = split_method_options(overrides, list(method_labels))
    options = with_budget(method_labels, options, run.budget)
    cfg = load_config(run.config, overrides + run.overrides())  # validated before any model work
    settings = MetricSettings(metric_names, insertion, deletion)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: expected a positive number of images")
    if targets is not None:
        from decam.workflows.evaluate_targets import check_targets

        targets = check_targets(targets, with_labels=bool(labels))
    label_map = read_labels(labels) if labels else None
    images = expand_images(image_args)[:limit]
    output_folder(out)  # a folder that cannot take files stops the run before the model loads

    from decam.cli.progress import bar
    from decam.evaluation.tables import markdown_table, rank_groups, summary_table
    from decam.workflows.evaluate import Evaluation, evaluation_spec

    spec = evaluation_spec(cfg, names, options, label_map, settings, targets)
    # with --ray the driver scores nothing: it checks the methods here, on the CPU, and writes the outputs
    evaluation = Evaluation.from_spec(spec, out, gallery, device="cpu" if ray is not None else None)
    score_all = None  # each image scored here
    if ray is not None:
        from functools import partial

        from decam.workflows.ray_tasks import ray_evaluate

        score_all = partial(ray_evaluate, evaluation, spec, address=ray_address(ray))
    progress = bar(total=len(images), unit="img", desc="evaluate", disable=quiet)

    def on_image(result) -> None:
        progress.update(1)
        if result.error is not None:
            progress.write(f"decam: error: {result.error}", file=sys.stderr)

    try:
        evaluation.run(images, on_image, score_all)
    finally:
        progress.close()
    failures = evaluation.failures()
    if not quiet:
        for heading, rows in rank_groups(evaluation.rows()):
            if heading is not None:
                print(f"{heading}:")
            print(markdown_table(summary_table(rows, names, evaluation.columns)), end="")
        print(f"{len(images) - len(failures)} images scored; results.csv, summary.md, curves/, maps/ "
              f"and gallery.png in {out}")
    tracked = _track(tracking, evaluation, cfg, out) if tracking.enabled else None
    if failures:
        print(f"decam: {len(failures)} of {len(images)} images failed (listed in {Path(out) / 'summary.md'})",
              file=sys.stderr)
        return EXIT_PARTIAL if len(failures) < len(images) else max(r.exit_code for r in failures)
    return tracked if tracked is not None else 0
