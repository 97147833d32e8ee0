"""Command line: ``decam explain``, ``decam sweep``, ``decam list``. The only module that parses arguments and prints.

Exit codes: 0 success · 1 some items failed (others were written) · 2 usage, configuration or
unavailable model · 3 bad input image/target · 4 the model failed or returned non-finite logits ·
5 the MLflow tracking store failed (local outputs were written) · 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from decam.errors import ConfigError, DecamError, InputError, ModelUnavailableError

EXIT_PARTIAL, EXIT_INTERRUPTED = 1, 130


def _split_positionals(items: list[str]) -> tuple[list[str], list[str]]:
    """Tokens with ``=`` that are not existing files are config overrides; the rest are images."""
    images, overrides = [], []
    for item in items:
        (overrides if "=" in item and not Path(item).exists() else images).append(item)
    return images, overrides


def expand_images(items: list[str]) -> list[Path]:
    """Files as given; folders → their image files, sorted."""
    from decam.io.images import IMAGE_SUFFIXES

    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise InputError(f"{p}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        else:
            out.append(p)
    return out


def _budget_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    for key, value in (("seed", args.seed), ("generations", args.generations), ("budget", args.budget),
                       ("searcher.popsize", args.popsize), ("model", args.model)):
        if value is not None:
            out.append(f"{key}={value}")
    return out


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain each item; a failed item is reported, listed in failures.csv and the rest go on."""
    from decam.config import load_config

    image_args, overrides = _split_positionals(args.items)
    overrides = _take_tracking_overrides(args, overrides)
    tracking = _ExplainTracking(args) if args.mlflow else None
    cfg = load_config(args.config, overrides + _budget_overrides(args))  # validated before model work
    items = expand_images(image_args) if image_args else [None]
    out_dir = _output_folder(args.out)

    from decam.search.explainer import Explainer
    from decam.io.images import default_image
    from decam.io import remove_stale_temporaries
    from decam.io.outputs import FAILURES_FILE, is_complete, unique_stem, write_explanation, write_failures

    remove_stale_temporaries(out_dir)
    write_failures(out_dir, [])  # a failures file from an earlier run would describe that run
    used: set[str] = set()
    jobs = [("coffee" if item is None else str(item), item) for item in items]
    jobs = [(name, item, unique_stem(name, used)) for name, item in jobs]  # stable across reruns
    if args.resume:
        for name, _, stem in jobs:
            if is_complete(out_dir, stem) and not args.quiet:
                print(f"{name}: outputs complete, skipped (--resume)")
    pending = [job for job in jobs if not (args.resume and is_complete(out_dir, job[2]))]
    failures: list = []
    if pending:  # after --resume skips: no model load when all is done
        images = [default_image()[1] if item is None else item for _, item, _ in pending]
        targets = [args.target] * len(images)
        label = pending[0][0] if len(pending) == 1 else f"{len(pending)} images"
        bar = _progress_bar(label, cfg, args.quiet, len(pending))
        if args.ray is not None:
            from decam.workflows.ray_tasks import ray_explain
            from decam.io.images import open_image

            explainer = None  # workers load the model; the driver only ships decoded images
            images = [_open_or_error(open_image, im) for im in images]
            results = ray_explain(cfg, images, targets, None if args.ray == "local" else args.ray)
        else:
            explainer = Explainer(config=cfg)
            # several searches share each model batch; outputs are written as each group finishes
            results = explainer.explain_many(images, targets, progress=bar)
        try:
            for i, result in results:
                name, _, stem = pending[i]
                try:
                    if isinstance(result, BaseException):
                        raise result
                    write_explanation(out_dir, name, result, stem=stem)
                    if tracking is not None:
                        explainer = explainer or Explainer(config=cfg)  # with --ray: for the metrics
                        tracking.log(explainer, result, name)
                except (ConfigError, ModelUnavailableError):
                    raise  # the whole run is misconfigured: no point in trying the next item
                except Exception as e:
                    if args.debug:
                        traceback.print_exception(e)
                    failures.append((name, *_describe_failure(name, e)))
                    print(f"decam: error: {failures[-1][2]}", file=sys.stderr)
                    write_failures(out_dir, failures)
                    continue
                if not args.quiet:
                    print(f"{name}: {result.class_name} (class {result.target}, p={result.probability:.3f}) "
                          f"{result.queries} queries, {result.seconds:.1f} s → {out_dir / stem}.overlay.png")
        finally:
            if bar is not None:
                bar.close()
    if failures:
        print(f"decam: {len(failures)} of {len(jobs)} images failed, listed in {out_dir / FAILURES_FILE}",
              file=sys.stderr)
        return EXIT_PARTIAL if len(failures) < len(jobs) else max(code for _, code, _ in failures)
    if tracking is not None and tracking.failed is not None:
        return tracking.failed.exit_code
    return 0


def _open_or_error(open_image, image):
    """Decode a path on the driver; a bad file becomes that item's error instead of stopping the run."""
    if not isinstance(image, (str, Path)):
        return image
    try:
        return open_image(image)
    except Exception as e:
        return e


def _take_tracking_overrides(args: argparse.Namespace, overrides: list[str]) -> list[str]:
    """``tracking.enabled=true``, ``tracking.experiment=NAME``, ``tracking.uri=URI`` → the --mlflow options."""
    rest = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "tracking.enabled":
            args.mlflow = args.mlflow or value.strip().lower() in ("true", "1", "yes")
        elif key in ("tracking.experiment", "tracking.uri"):
            setattr(args, "experiment" if key == "tracking.experiment" else "tracking_uri", value)
        elif key.startswith("tracking."):
            raise ConfigError(f"unknown key {key}; valid: tracking.enabled, tracking.experiment, tracking.uri")
        else:
            rest.append(item)
    args.mlflow = args.mlflow or args.experiment is not None or args.tracking_uri is not None
    return rest


class _ExplainTracking:
    """``--mlflow``: one MLflow run per explained image; a failing store is reported once, then left alone."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.uri, self.experiment, self.quiet = args.tracking_uri, args.experiment or "decam", args.quiet
        self.tracker = None
        self.failed: DecamError | None = None

    def log(self, explainer, exp, name: str) -> None:
        if self.failed is not None:
            return
        from decam.tracking import Tracker, TrackingError, log_explanation, score_explanation

        scores = score_explanation(explainer, exp)
        try:
            self.tracker = self.tracker or Tracker(self.uri, self.experiment)
            run_id = log_explanation(self.tracker, exp, name, scores)
        except TrackingError as e:
            self.failed = e
            print(f"decam: warning: {' '.join(str(e).split())} (local outputs are kept; "
                  "no more tracking in this run)", file=sys.stderr)
            return
        if not self.quiet:
            print(f"{name}: DiffAUC {100 * scores.diff:.1f} → MLflow run {run_id} "
                  f"(experiment {self.experiment!r}, {self.tracker.uri})")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run or resume a study; every (configuration, image) is a child run of the study's parent run."""
    import signal

    from decam.io import safe_stem
    from decam.workflows.sweep import load_study, plan, run_study, summary_markdown
    from decam.tracking import Tracker

    study = load_study(args.study, args.overrides, images=args.images, limit=args.limit, experiment=args.experiment)
    total = len(plan(study))  # every configuration validated before the store or a model is touched
    tracker = Tracker(args.tracking_uri, study.experiment)
    out_dir = Path(args.out or Path("decam-out") / safe_stem(study.name))
    bar = None
    if not args.quiet:
        bar = _tqdm(total=total, desc=study.name, unit="run")

    def progress(event: str, child, info: dict) -> None:
        if bar is not None:
            bar.update(1)
            if "diffauc" in info:
                bar.set_postfix(diffauc=f"{100 * info['diffauc']:.1f}")
        if event == "fail":
            print(f"decam: error: {child.image_id}: {info['error']}", file=sys.stderr)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)  # kill → the parent run ends KILLED, not RUNNING
    try:
        result = run_study(study, tracker, out_dir, progress)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(summary_markdown(result.summary, study.keys), end="")
        print(f"{study.name}: {result.ran} runs, {result.skipped} already done, {len(result.failures)} failed; "
              f"parent run {result.parent} in experiment {study.experiment!r}; summary in {out_dir / 'summary'}")
        print(f"browse: mlflow ui --backend-store-uri {tracker.uri}")
    return EXIT_PARTIAL if result.failures else 0


def _describe_failure(name: str, e: Exception) -> tuple[int, str]:
    """Exit code and one-line message, naming the item, for an item that failed."""
    msg = " ".join(str(e).split())
    if isinstance(e, DecamError):
        code = e.exit_code
    elif isinstance(e, OSError):
        code, msg = EXIT_PARTIAL, f"cannot write outputs ({msg})"
    else:  # a defect in decam or a plugin, not in the input
        code, msg = EXIT_PARTIAL, f"unexpected {type(e).__name__}: {msg} (--debug shows the traceback)"
    return code, msg if msg.startswith(name) else f"{name}: {msg}"


def _output_folder(out: str) -> Path:
    """``--out``, created if needed; a usage error (exit 2) when it cannot hold files."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create the output folder ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: output folder is not writable")
    return path


def _progress_bar(name: str, cfg, quiet: bool, images: int = 1) -> _Progress | None:
    return None if quiet else _Progress(name, cfg.budget, cfg.generations, images)


def _tqdm(**kwargs):
    """A tqdm bar on stderr; redrawn every 30 s, not every step, when stderr is a log file or pipe."""
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 30.0, **kwargs)


class _Progress:
    """A tqdm bar on stderr over all images' generations (or queries, with a budget), fed by the
    explainer's per-generation callback ``(image index, history entry)``."""

    def __init__(self, name: str, budget: int | None, generations: int, images: int = 1) -> None:
        self.budget, self.done = budget, {}
        self.bar = _tqdm(total=images * (budget if budget is not None else generations), desc=Path(name).name,
                         unit="q" if budget else "gen", leave=False)

    def __call__(self, index: int, entry: dict) -> None:
        step = entry["queries"] - self.done.get(index, 0) if self.budget else 1
        self.done[index] = entry["queries"]
        self.bar.update(step)
        self.bar.set_postfix(best=f"{entry['best']:.3f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _track_evaluation(args: argparse.Namespace, evaluation, cfg) -> int | None:
    """Log the comparison to MLflow when asked (one parent run, a child per image and method);
    a failing store is a one-line warning and exit code 5, the local outputs stay."""
    if not (args.mlflow or args.experiment or args.tracking_uri):
        return None
    from omegaconf import OmegaConf

    from decam.tracking import Tracker, TrackingError, flatten, log_evaluation

    try:
        tracker = Tracker(args.tracking_uri, args.experiment or "decam-evaluate")
        log_evaluation(tracker, evaluation.rows(), params=flatten(OmegaConf.to_container(cfg)), folder=args.out)
    except TrackingError as e:
        print(f"decam: warning: {e}; local outputs are in {args.out}", file=sys.stderr)
        return e.exit_code
    return None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score explanation methods on the same images with insertion / deletion (decam.workflows.evaluate)."""
    from decam.evaluation.methods import METHODS
    from decam.config import load_config
    from decam.workflows.evaluate import read_labels, split_method_options

    image_args, overrides = _split_positionals(args.items)
    if not image_args:
        raise InputError("decam evaluate needs image files or a folder")
    overrides, options = split_method_options(overrides)
    cfg = load_config(args.config, overrides + _budget_overrides(args))  # validated before model work
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in names:
        METHODS[name]  # unknown names fail here, with suggestions, before the model loads
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: expected a positive number of images")
    labels = read_labels(args.labels) if args.labels else None
    images = expand_images(image_args)[: args.limit]

    from decam.workflows.evaluate import Evaluation, evaluation_spec
    from decam.evaluation.tables import markdown_table, summary_table

    spec = evaluation_spec(cfg, names, options, labels)
    # with --ray the driver scores nothing: it checks the methods here, on the CPU, and writes the outputs
    evaluation = Evaluation.from_spec(spec, args.out, args.gallery, device="cpu" if args.ray is not None else None)
    score_all = None  # each image scored here
    if args.ray is not None:
        from functools import partial

        from decam.workflows.ray_tasks import ray_evaluate

        score_all = partial(ray_evaluate, evaluation, spec, address=None if args.ray == "local" else args.ray)
    bar = _tqdm(total=len(images), unit="img", desc="evaluate", disable=args.quiet)

    def on_image(result) -> None:
        bar.update(1)
        if result.error is not None:
            bar.write(f"decam: error: {result.error}", file=sys.stderr)

    try:
        evaluation.run(images, on_image, score_all)
    finally:
        bar.close()
    failures = evaluation.failures()
    if not args.quiet:
        print(markdown_table(summary_table(evaluation.rows(), names)), end="")
        print(f"{len(images) - len(failures)} images scored; results.csv, summary.md, curves/, maps/ "
              f"and gallery.png in {args.out}")
    tracked = _track_evaluation(args, evaluation, cfg)
    if failures:
        print(f"decam: {len(failures)} of {len(images)} images failed (listed in {Path(args.out) / 'summary.md'})",
              file=sys.stderr)
        return EXIT_PARTIAL if len(failures) < len(images) else max(r.exit_code for r in failures)
    if tracked is not None:
        return tracked
    return 0


def _summary_line(obj: object) -> str:
    """A plugin docstring's first paragraph on one line, without reST markup."""
    import inspect

    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "")


def _default(value: object) -> str:
    return repr(float(f"{value:.6g}")) if isinstance(value, float) else repr(value)


def _run_defaults(default, section: str, name: str) -> dict:
    """The section a run gets with ``section=name`` on the default config ({} if it does not validate)."""
    from decam.config import load_config

    if name == default[section]["name"]:
        return dict(default[section])
    try:
        return dict(load_config(None, [f"{section}={name}"])[section])
    except DecamError:
        return {}


def cmd_list(args: argparse.Namespace) -> int:
    from decam.config import SECTIONS, load_config
    from decam.models import MODELS
    from decam.registry import plugin_params

    default = load_config()
    print("Parameters show the values a run starts from: configs/default.yaml for the default plugin "
          "(marked *), else the plugin's own defaults.")
    for section, (registry, skip) in SECTIONS.items():
        print(f"{section}s:")
        for name in registry:
            factory = registry[name]
            start = _run_defaults(default, section, name)
            params = ", ".join(
                f"{p.name}={_default(start.get(p.name, p.default))}" + (f" {p.range.describe()}" if p.range else "")
                for p in plugin_params(factory, skip=skip)
            )
            doc = _summary_line(factory)
            mark = "*" if name == default[section]["name"] else " "
            print(f" {mark}{name:<14} {params}")
            if doc:
                print(f"  {'':<14} {doc}")
    print("models:")
    for name in MODELS:
        print(f"  {name}")
    print("  torchvision:<arch>  (torchvision's ImageNet weights, from its local cache)")
    print("  package.module:function  (imports and runs your code)")
    from decam.evaluation.methods import METHODS

    print("methods (decam evaluate --methods):")
    for name in METHODS:
        factory = METHODS[name]
        params = ", ".join(f"{p.name}={p.default!r}" for p in plugin_params(factory, skip=1) if p.name != "config")
        doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        print(f"  {name:<14} {params}")
        if doc:
            print(f"  {'':<14} {doc}")
    return 0


def _add_run_options(parser: argparse.ArgumentParser, budget_help: str) -> None:
    """The model and config options that ``explain`` and ``evaluate`` share."""
    parser.add_argument("--model", help="registered name, torchvision:<arch> or package.module:function")
    parser.add_argument("--config", help="YAML file merged over configs/default.yaml (e.g. configs/paper.yaml)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--popsize", type=int)
    parser.add_argument("--generations", type=int)
    parser.add_argument("--budget", type=int, help=budget_help)


def _add_tracking_options(parser: argparse.ArgumentParser, mlflow_help: str, experiment: str) -> None:
    """MLflow and Ray options of ``explain`` and ``evaluate`` (and the hidden per-command --debug)."""
    parser.add_argument("--mlflow", action="store_true", help=mlflow_help)
    parser.add_argument("--experiment", help=f"MLflow experiment (default: {experiment}; implies --mlflow)")
    parser.add_argument("--tracking-uri", help="MLflow store, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000 "
                        "(default: $MLFLOW_TRACKING_URI or MLflow's default; implies --mlflow)")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="spread images over a Ray cluster (no ADDRESS: a local Ray instance)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="decam", description="Black-box saliency maps by evolutionary search.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("explain", help="explain images (no IMAGE: an embedded photo)")
    ex.add_argument("items", nargs="*", metavar="IMAGE|key=value",
                    help="image files or folders, and config overrides such as searcher.CR=0.5")
    ex.add_argument("--target", type=int, help="class index to explain (default: top-1)")
    ex.add_argument("--out", default="decam-out", help="output folder (default: decam-out)")
    _add_run_options(ex, "total model queries (decides the generations)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar or summary lines")
    ex.add_argument("--resume", action="store_true",
                    help="skip images whose outputs in --out are complete (e.g. after an interrupted run)")
    _add_tracking_options(ex, "log every image as an MLflow run (or tracking.enabled=true)", "decam")
    ex.set_defaults(func=cmd_explain)

    sw = sub.add_parser("sweep", help="run a study (see experiments/): one MLflow parent run, a child per config and image")
    sw.add_argument("study", help="study YAML with images, base and grid or sample")
    sw.add_argument("overrides", nargs="*", metavar="key=value",
                    help="base config overrides (generations=200) or grid axes (grid.searcher.CR=[0.2,0.9])")
    sw.add_argument("--images", nargs="+", help="image files or folders instead of the study's images")
    sw.add_argument("--limit", type=int, help="use the first N images only")
    sw.add_argument("--experiment", help="MLflow experiment (default: the study's name)")
    sw.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or MLflow's default)")
    sw.add_argument("--out", help="local copies of each run's files and the summary (default: decam-out/<study>)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sw.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sw.set_defaults(func=cmd_sweep)

    ev = sub.add_parser("evaluate", help="compare decam with other methods on insertion / deletion AUC")
    ev.add_argument("items", nargs="+", metavar="IMAGE|key=value",
                    help="image files or folders; key=value configures decam (generations=100) or another "
                         "method (gradcam.target_layer=net.layer4, rise.n_masks=2000)")
    ev.add_argument("--methods", default="decam,gradcam,gradcampp,fullgrad,ig,rise,lime,random",
                    help="comma-separated methods (decam list shows them; default: %(default)s)")
    ev.add_argument("--labels", help="CSV with file,class_index columns giving each image's target (default: top-1)")
    ev.add_argument("--out", default="decam-eval", help="output folder (default: decam-eval)")
    ev.add_argument("--limit", type=int, help="use the first N images only")
    ev.add_argument("--gallery", type=int, default=8, help="images in gallery.png (default: 8)")
    _add_run_options(ev, "decam's model queries per image (decides the generations)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    _add_tracking_options(ev, "log the comparison to MLflow", "decam-evaluate")
    ev.set_defaults(func=cmd_evaluate)

    ls = sub.add_parser("list", help="registered encodings, searchers, aggregators and models")
    ls.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # positionals after options (``explain --out d a.jpg k=v``, ``sweep S.yaml --limit 5 k=v``) land in
    # ``extra``: give them back
    positional = "items" if hasattr(args, "items") else "overrides" if hasattr(args, "overrides") else None
    if extra and positional and not any(e.startswith("-") for e in extra):
        getattr(args, positional).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except DecamError as e:
        if args.debug:
            traceback.print_exc()
        print(f"decam: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("decam: interrupted (finished outputs are kept; --resume skips them)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
