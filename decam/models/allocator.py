"""glibc malloc settings for the CPU forward path: keep freed activation buffers instead of
handing them back to the kernel after every batch."""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8
SETTINGS = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 1 << 34, M_TOP_PAD: 1 << 29, M_ARENA_MAX: 1}
"""No mmap for big blocks, never trim the heap, grow heaps 512 MiB at a time, and one malloc arena
for all threads. Without the last, every thread that ever ran a search or a kernel kept its own
never-trimmed heap and a long run crept up: +17 % resident memory over 150 photos (docs/reliability.md).
The arena limit only binds threads that have not allocated yet, so the command line sets it first."""


def tune_allocator() -> bool:
    """Process-wide: stop glibc from returning activation buffers to the kernel after each forward.

    Without this a CPU forward pass spends much of its time in mmap/munmap and page faults. The
    top pad matters as much as the other two: oneDNN's worker threads allocate from their own
    arenas, whose heaps glibc unmaps when they empty unless the pad keeps them (measured with
    ``experiments/bench_throughput.py``: ~3,400 minor page faults per query without it, 0 with it).
    Same as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=... MALLOC_TOP_PAD_=...``; a no-op (False)
    off glibc or with ``DECAM_NO_MALLOPT`` set.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DECAM_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(option, value) == 1 for option, value in SETTINGS.items())
    except (OSError, AttributeError):
        return False
