"""The ``decam`` command group and :func:`main`: the one place where errors become a line on stderr
and an exit code."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from decam.cli.evaluate import evaluate
from decam.cli.explain import explain
from decam.cli.listing import list_plugins
from decam.cli.options import DEBUG, debug_flag
from decam.cli.serve import serve
from decam.cli.sweep import sweep
from decam.errors import DecamError

EXIT_INTERRUPTED = 130
INTERRUPTED = "decam: interrupted (finished outputs are kept; --resume skips them)"


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


class DecamGroup(click.Group):
    """Runs the chosen command; a DecamError or Ctrl-C becomes one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DecamError as e:
            if ctx.meta.get(DEBUG):
                traceback.print_exc()
            print(f"decam: error: {_one_line(e)}", file=sys.stderr)
            return e.exit_code
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return EXIT_INTERRUPTED


@click.group("decam", cls=DecamGroup, no_args_is_help=False,
             context_settings={"help_option_names": ["-h", "--help"]})
@debug_flag(hidden=False)
def cli() -> None:
    """Black-box saliency maps by evolutionary search.

    Exit codes: 0 success, 1 some items failed (the others were written), 2 usage, configuration
    or unavailable model, 3 bad input image or target, 4 the model failed or returned non-finite
    logits, 5 the MLflow tracking store failed (local outputs were written), 130 interrupted.
    """


for command in (explain, sweep, evaluate, serve, list_plugins):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run ``decam`` with ``argv`` (default: the process's arguments) and return its exit code."""
    return _run(argv)


def _run(argv: list[str] | None) -> int:
    """click without its own exit and printing: usage errors become one line and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="decam", standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"decam: error: {_one_line(e.format_message())}{hint}", file=sys.stderr)
        return e.exit_code
    except click.ClickException as e:
        print(f"decam: error: {_one_line(e.format_message())}", file=sys.stderr)
        return e.exit_code
    except click.Abort:  # Ctrl-C while click itself was running
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0
