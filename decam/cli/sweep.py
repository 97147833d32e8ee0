"""``decam sweep``: run or resume a study (:mod:`decam.workflows.sweep`), a progress bar and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from decam.cli.options import debug_option, output_folder
from decam.errors import EXIT_PARTIAL


@click.command("sweep", short_help="run a study (see experiments/): one MLflow parent run, a child per config and image")
@click.argument("study", type=click.Path())
@click.argument("items", nargs=-1, type=click.Path(), metavar="[key=value]...")
@click.option("--images", multiple=True, type=click.Path(), metavar="IMAGE...",
              help="image files or folders instead of the study's images")
@click.option("--limit", type=int, metavar="N", help="use the first N images only")
@click.option("--experiment", metavar="NAME", help="MLflow experiment (default: the study's name)")
@click.option("--tracking-uri", metavar="URI", help="MLflow store (default: $MLFLOW_TRACKING_URI or MLflow's default)")
@click.option("--out", metavar="DIR", help="local copies of each run's files and the summary (default: decam-out/<study>)")
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
@debug_option
def sweep(study: str, items: tuple[str, ...], images: tuple[str, ...], limit: int | None, experiment: str | None,
          tracking_uri: str | None, out: str | None, quiet: bool) -> int:
    """Run or resume the study STUDY (a YAML file with images, base and grid or sample); every
    (configuration, image) is a child run of the study's MLflow parent run.

    key=value arguments override the base config (generations=200) or a grid axis
    (grid.searcher.CR=[0.2,0.9]). With --images, image files or folders among
    them are more images (--images a.jpg b.jpg).
    """
    from decam.models import tune_allocator

    tune_allocator()  # before plugins and the model start threads: see decam.models.allocator

    from decam.cli.progress import bar
    from decam.io import safe_stem
    from decam.tracking import Tracker
    from decam.workflows.inputs import split_items
    from decam.workflows.sweep import load_study, plan, run_study, summary_markdown

    overrides = list(items)
    if images:  # ``--images a.jpg b.jpg``: the words after the first are arguments to click
        more, overrides = split_items(items)
        images = (*images, *more)
    spec = load_study(study, overrides, images=list(images) or None, limit=limit, experiment=experiment)
    total = len(plan(spec))  # every configuration validated before the store or a model is touched
    out_dir = output_folder(out or Path("decam-out") / safe_stem(spec.name))
    tracker = Tracker(tracking_uri, spec.experiment)
    progress = None if quiet else bar(total=total, desc=spec.name, unit="run")

    def on_child(event: str, child, info: dict) -> None:
        if event == "wait":  # another sweep of this study has it; counted when it ends
            return
        if progress is not None:
            progress.update(1)
            if "diffauc" in info:
                progress.set_postfix(diffauc=f"{100 * info['diffauc']:.1f}")
        if event == "fail":
            print(f"decam: error: {child.image_id}: {info['error']}", file=sys.stderr)

    try:  # SIGTERM and Ctrl-C end the parent run KILLED (decam.cli.app turns SIGTERM into Terminated)
        result = run_study(spec, tracker, out_dir, on_child)
    finally:
        if progress is not None:
            progress.close()
    if not quiet:
        print(summary_markdown(result.summary, spec.keys), end="")
        print(f"{spec.name}: {result.ran} runs, {result.skipped} already done, {len(result.failures)} failed; "
              f"parent run {result.parent} in experiment {spec.experiment!r}; summary in {out_dir / 'summary'}")
        print(f"browse: mlflow ui --backend-store-uri {tracker.uri}, then {tracker.experiment_url()}")
    return EXIT_PARTIAL if result.failures else 0
