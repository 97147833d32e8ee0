"""decam's user-facing errors; each carries the CLI exit code documented in the README."""

from __future__ import annotations


class DecamError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(DecamError, ValueError):
    """Bad configuration, option or plugin name (exit code 2)."""

    exit_code = 2


class ModelUnavailableError(DecamError):
    """Model weights or code that are not available offline (exit code 2)."""

    exit_code = 2


class SearchSpaceError(ConfigError):
    """An encoding or searcher that cannot search this image, e.g. too few superpixels (exit code 2)."""


class InputError(DecamError, ValueError):
    """An input image or target that cannot be used (exit code 3)."""

    exit_code = 3


class ModelOutputError(DecamError):
    """The black-box model raised or returned something that is not finite logits (exit code 4)."""

    exit_code = 4


class OutputError(DecamError):
    """The output folder stopped taking files mid-run: disk full, quota, read-only (exit code 6).

    The run stops there (every later image would fail the same way); finished outputs are whole.
    """

    exit_code = 6


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every cleanup path runs (runs end KILLED); the CLI exits 143."""


class DecamWarning(UserWarning):
    """Something decam worked around and the user should know (the CLI prints it as one line)."""


EXIT_PARTIAL = 1
"""Exit code of a run over many items in which some failed and the others were written."""
