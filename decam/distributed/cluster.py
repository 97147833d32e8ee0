"""Reaching a Ray cluster and spreading jobs over it: one task per job, results back to the caller.

:func:`connect` is also how a search with ``actors`` (decam.distributed.actors) reaches Ray.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from decam.errors import ConfigError


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` unless already connected; True when this call
    connected. ``None``: ``$RAY_ADDRESS``, else a cluster that ``ray start`` started on this machine,
    else a new local instance with ``num_cpus`` CPUs (what ``ray.init`` does)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray and actors need the ray package: pip install 'ray[default]'") from None
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
        raise ConfigError(f"cannot connect to Ray at {where} ({str(e).splitlines()[0]})") from None
    return True


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected for the block (see :func:`connect`); shut down afterwards only
    when the block connected it."""
    started = connect(address, num_cpus)
    import ray

    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def spread(function: Callable, common: Any, jobs: Iterable, address: str | None = None,
           num_cpus: int | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``function(common, *job)`` as one Ray task per job and yield ``(index, result)`` as tasks
    finish; ``common`` is shipped once, each job as it is drawn from ``jobs``. A job given as an
    exception is passed through as its result, and a task whose worker died yields that error: the
    other jobs go on."""
    with ray_session(address, num_cpus) as ray:
        task = ray.remote(function)
        common_ref = ray.put(common)
        pending = {}
        for i, job in enumerate(jobs):
            if isinstance(job, Exception):
                yield i, job
            else:
                pending[task.remote(common_ref, *job)] = i
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                yield i, ray.get(done[0])
            except ray.exceptions.RayError as e:
                yield i, e


def in_order(results: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """``(index, result)`` pairs arriving in any order → the same pairs by index 0, 1, 2, …"""
    waiting, following = {}, 0
    for i, result in results:
        waiting[i] = result
        while following in waiting:
            yield following, waiting.pop(following)
            following += 1
