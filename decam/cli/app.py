"""The ``decam`` command group and :func:`main`: the one place where errors become a line on stderr
and an exit code."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import click

from decam.cli.evaluate import evaluate
from decam.cli.explain import explain
from decam.cli.listing import list_plugins
from decam.cli.options import DEBUG, debug_flag
from decam.cli.serve import serve
from decam.cli.sweep import sweep
from decam.errors import DecamError, DecamWarning, OutputError, Terminated

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + SIGTERM, what a shell reports for a process the signal killed; schedulers read it so."""
INTERRUPTED = "decam: interrupted (finished outputs are kept; --resume skips them)"
TERMINATED = "decam: terminated by SIGTERM (finished outputs are kept; --resume skips them)"


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


class DecamGroup(click.Group):
    """Runs the chosen command; a DecamError or Ctrl-C becomes one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with stop_on_signals(), one_line_warnings():
                return super().invoke(ctx)
        except OSError as e:
            if not cannot_write(e):
                raise
            error: DecamError = OutputError(f"{e.filename or 'output'}: cannot write ({e.strerror}); "
                                            "finished outputs are whole")
            return _report(ctx, error)
        except DecamError as e:
            return _report(ctx, e)
        except Terminated:
            print(TERMINATED, file=sys.stderr)
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return EXIT_INTERRUPTED


def _report(ctx: click.Context, e: DecamError) -> int:
    if ctx.meta.get(DEBUG):
        traceback.print_exc()
    print(f"decam: error: {_one_line(e)}", file=sys.stderr)
    return e.exit_code


def cannot_write(error: BaseException) -> bool:
    from decam.io import cannot_write as full_or_read_only

    return full_or_read_only(error)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` and Ctrl-C ``KeyboardInterrupt`` in the main thread, as
    Python does for Ctrl-C alone, so every ``finally`` runs (temporaries go, MLflow runs end
    KILLED); both also ask searches in worker threads to stop (:mod:`decam.interrupts`).
    Signals the parent process ignores stay ignored."""
    from decam import interrupts

    interrupts.reset()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        interrupts.request_stop()
        interrupts.deliver(Terminated())

    def interrupt(signum: int, frame: Any) -> None:
        interrupts.request_stop()
        interrupts.deliver(KeyboardInterrupt())

    previous = {}
    for signum, handler in ((signal.SIGTERM, terminate), (signal.SIGINT, interrupt)):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """decam's own warnings (:class:`DecamWarning`) as ``decam: warning: …`` lines on stderr."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, DecamWarning):
            text = _one_line(message)
            print(text if text.startswith("decam: ") else f"decam: warning: {text}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


@click.group("decam", cls=DecamGroup, no_args_is_help=False,
             context_settings={"help_option_names": ["-h", "--help"]})
@debug_flag(hidden=False)
def cli() -> None:
    """Black-box saliency maps by evolutionary search.

    Exit codes: 0 success, 1 some items failed (the others were written), 2 usage, configuration
    or unavailable model, 3 bad input image or target, 4 the model failed or returned non-finite
    logits, 5 the MLflow tracking store failed (local outputs were written), 6 the output folder
    stopped taking files (disk full), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
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
