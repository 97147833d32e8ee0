"""glibc malloc settings for the CPU forward path: keep freed activation buffers instead of
handing them back to the kernel after every batch."""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def tune_allocator() -> bool:
    """Process-wide: stop glibc from returning activation buffers to the kernel after each forward.

    Without this about half of a CPU forward pass is spent in mmap/munmap and page faults. Same
    effect as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``; a no-op (False) off glibc or with
    ``DECAM_NO_MALLOPT`` set.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DECAM_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 34))
    except (OSError, AttributeError):
        return False
