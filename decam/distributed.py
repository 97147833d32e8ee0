"""Spreading images over a Ray cluster: one task per image, results come back to the caller.

The driver opens each image and ships the decoded picture, so workers need no access to the
driver's files; each worker process builds its Explainer (``decam explain --ray``) or Evaluation
(``decam evaluate --ray``) once per configuration, loading the model once, and reuses it for its
later tasks. Maps and scores equal those of a local run with the same seed (each task seeds its own
search). :func:`connect` is also how a search with ``actors`` (decam.problem) reaches Ray.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from decam.errors import ConfigError

if TYPE_CHECKING:
    from decam.evaluate import Evaluation, ImageScores


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


def _decoded(path: str | Path) -> Any:
    """The picture at ``path``, opened on the driver; a bad file becomes that image's error."""
    from decam.images import open_image

    try:
        return open_image(path)
    except Exception as e:
        return e


# decam explain --ray


@lru_cache(maxsize=2)
def _explainer(config_yaml: str):
    """One Explainer per worker process and config (the model loads once per worker)."""
    from decam.explain import Explainer

    return Explainer(config=OmegaConf.create(config_yaml))


def _explain_task(config_yaml: str, image: Any, target: int | None):
    try:
        exp = _explainer(config_yaml).explain(image, target)
        exp.image = exp.image.cpu()
        return exp
    except Exception as e:  # reported per image by the driver, like a local failure
        return e


def ray_explain(config, images: list, targets: list[int | None], address: str | None = None,
                num_cpus: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, Explanation | exception)`` as tasks finish on the cluster at ``address``
    (``None``: start a local Ray instance with ``num_cpus`` CPUs). An exception given in place of
    an image is passed through as that image's result."""
    jobs = [image if isinstance(image, Exception) else (image, target) for image, target in zip(images, targets)]
    return spread(_explain_task, OmegaConf.to_yaml(config), jobs, address, num_cpus)


# decam evaluate --ray


@lru_cache(maxsize=2)
def _evaluation(spec: str) -> Evaluation:
    """One Evaluation per worker process and spec (the model loads once per worker); it writes nothing."""
    from decam.evaluate import Evaluation

    return Evaluation.from_spec(spec)


def _evaluate_task(spec: str, path: str, stem: str, image: Any) -> ImageScores | Exception:
    try:
        return _evaluation(spec).score(path, stem, image)
    except Exception as e:  # the Evaluation could not be built here: reported per image by the driver
        return e


def ray_evaluate(evaluation: Evaluation, spec: str, jobs: list[tuple[Path, str]], address: str | None = None,
                 num_cpus: int | None = None) -> Iterator[ImageScores]:
    """Score ``(path, stem)`` jobs on the cluster at ``address`` with the Evaluation that ``spec``
    describes, yielding each image's :class:`~decam.evaluate.ImageScores` in job order (for
    ``Evaluation.run(score_all=...)``). An image the driver cannot open, or whose task failed, is
    reported through ``evaluation`` itself, as in a local run."""
    # decoded one by one as the tasks are submitted, so the cluster starts on the first at once
    shipped = (image if isinstance(image := _decoded(path), Exception) else (str(path), stem, image)
               for path, stem in jobs)
    for i, result in in_order(spread(_evaluate_task, spec, shipped, address, num_cpus)):
        path, stem = jobs[i]
        yield evaluation.failed(path, stem, result) if isinstance(result, Exception) else result
