"""Command line: ``decam explain``, ``decam list``. The only module that parses arguments and prints.

Exit codes: 0 success · 1 some items failed (others were written) · 2 usage, configuration or
unavailable model · 3 bad input image/target · 4 the model failed or returned non-finite logits ·
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from decam.errors import DecamError, InputError

EXIT_PARTIAL, EXIT_INTERRUPTED = 1, 130


def _split_positionals(items: list[str]) -> tuple[list[str], list[str]]:
    """Tokens with ``=`` that are not existing files are config overrides; the rest are images."""
    images, overrides = [], []
    for item in items:
        (overrides if "=" in item and not Path(item).exists() else images).append(item)
    return images, overrides


def expand_images(items: list[str]) -> list[Path]:
    """Files as given; folders → their image files, sorted."""
    from decam.images import IMAGE_SUFFIXES

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
    from decam.config import load_config

    image_args, overrides = _split_positionals(args.items)
    cfg = load_config(args.config, overrides + _budget_overrides(args))  # validated before model work
    items = expand_images(image_args) if image_args else [None]

    from decam.explain import Explainer
    from decam.images import default_image
    from decam.outputs import write_explanation

    explainer = Explainer(config=cfg)
    out_dir = Path(args.out)
    failures, used_stems = [], set()
    for item in items:
        name, image = default_image() if item is None else (str(item), item)
        try:
            exp = explainer.explain(image, args.target, progress=_progress_bar(name, cfg, args.quiet))
        except DecamError as e:
            if len(items) == 1:
                raise
            failures.append((name, e))
            print(f"decam: {e}", file=sys.stderr)
            continue
        stem = write_explanation(out_dir, name, exp, used_stems)
        if not args.quiet:
            print(f"{name}: {exp.class_name} (class {exp.target}, p={exp.probability:.3f}) "
                  f"{exp.queries} queries, {exp.seconds:.1f} s → {out_dir / stem}.overlay.png")
    if failures:
        print(f"decam: {len(failures)} of {len(items)} images failed", file=sys.stderr)
        return EXIT_PARTIAL if len(failures) < len(items) else max(e.exit_code for _, e in failures)
    return 0


def _progress_bar(name: str, cfg, quiet: bool):
    if quiet:
        return None
    from tqdm.auto import tqdm

    total = cfg.budget if cfg.budget is not None else cfg.generations
    bar = tqdm(total=total, desc=Path(name).name, unit="q" if cfg.budget else "gen", leave=False, file=sys.stderr)

    def update(entry: dict) -> None:
        bar.update(entry["queries"] - bar.n if cfg.budget else 1)
        bar.set_postfix(best=f"{entry['best']:.3f}")
        if bar.n >= bar.total:
            bar.close()

    return update


def cmd_list(args: argparse.Namespace) -> int:
    from decam.config import SECTIONS
    from decam.models import MODELS
    from decam.registry import plugin_params

    for section, (registry, skip) in SECTIONS.items():
        print(f"{section}s:")
        for name in registry:
            factory = registry[name]
            params = ", ".join(
                f"{p.name}={p.default!r}" + (f" {p.range.describe()}" if p.range else "")
                for p in plugin_params(factory, skip=skip)
            )
            doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
            print(f"  {name:<14} {params}")
            if doc:
                print(f"  {'':<14} {doc}")
    print("models:")
    for name in MODELS:
        print(f"  {name}")
    print("  torchvision:<arch>  (torchvision's ImageNet weights, from its local cache)")
    print("  package.module:function  (imports and runs your code)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="decam", description="Black-box saliency maps by evolutionary search.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("explain", help="explain images (no IMAGE: an embedded photo)")
    ex.add_argument("items", nargs="*", metavar="IMAGE|key=value",
                    help="image files or folders, and config overrides such as searcher.CR=0.5")
    ex.add_argument("--model", help="registered name, torchvision:<arch> or package.module:function")
    ex.add_argument("--target", type=int, help="class index to explain (default: top-1)")
    ex.add_argument("--out", default="decam-out", help="output folder (default: decam-out)")
    ex.add_argument("--config", help="YAML file merged over configs/default.yaml (e.g. configs/paper.yaml)")
    ex.add_argument("--seed", type=int)
    ex.add_argument("--popsize", type=int)
    ex.add_argument("--generations", type=int)
    ex.add_argument("--budget", type=int, help="total model queries (decides the generations)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar or summary lines")
    ex.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    ex.set_defaults(func=cmd_explain)

    ls = sub.add_parser("list", help="registered encodings, searchers, aggregators and models")
    ls.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DecamError as e:
        if args.debug:
            traceback.print_exc()
        print(f"decam: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("decam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
