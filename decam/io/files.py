"""Writing outputs: every file goes to a temporary name first and is renamed when complete."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")  # .<name>.<pid>.<random>.tmp, see atomic_open
MAX_STEM_BYTES = 200
"""Longest output stem (UTF-8 bytes): ``.<stem>.overlay.png.<pid>.<random>.tmp`` stays under 255."""


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", sync: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; it replaces ``path`` only if the block succeeds.

    ``sync``: flush it to the disk before the rename, so that it survives a crash of the machine,
    not only of the process (off for files that are merely a cache, e.g. search checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # "No space left on device" alone does not say where
        raise


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Errors after which no later write into the folder can succeed: the run stops instead of going on."""


def cannot_write(error: BaseException) -> bool:
    """Whether ``error`` says the filesystem takes no more files (disk full, quota, read-only)."""
    return isinstance(error, OSError) and error.errno in WRITE_ERRNOS


def check_writable(folder: str | Path, probe_bytes: int = 4096) -> None:
    """Write, sync and delete a small hidden file in ``folder``; raise the OSError if it cannot hold one.

    Catches what permission bits do not show: a read-only mount, a full disk, a quota, root on a
    read-only filesystem.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * probe_bytes)
            f.flush()
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """``(H, W)`` or ``(H, W, 3)`` uint8 array → PNG."""
    with atomic_open(path) as f:
        Image.fromarray(rgb).save(f, format="PNG")


def save_json(path: str | Path, data: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")


def safe_stem(name: str) -> str:
    """A file-name stem that cannot leave the output folder (no separators, no leading dots, bounded length)."""
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).stem).lstrip(".") or "image"
    raw = stem.encode()
    if len(raw) > MAX_STEM_BYTES:
        digest = hashlib.sha1(raw).hexdigest()[:8]  # keeps long names that differ late apart
        stem = f"{raw[: MAX_STEM_BYTES // 2].decode(errors='ignore')}_{digest}"
    return stem


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files that a killed run (e.g. ``kill -9``) left in ``folder``; return them.

    A temporary file carries the writer's process id; it is stale when that process is gone.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".*{TMP_SUFFIX}"):
        match = _TMP_NAME.match(tmp.name)
        if match is None or int(match[1]) == os.getpid() or _alive(int(match[1])):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
