"""Spreading images over a Ray cluster: one task per image, results come back to the caller.

The driver opens each image and ships the decoded picture, so workers need no access to the
driver's files; each worker process loads the model once and reuses it for its later tasks.
Maps equal those of a local ``decam explain`` with the same seed (each task seeds its own search).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from omegaconf import OmegaConf

from decam.errors import ConfigError


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
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the ray package: pip install 'ray[default]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"--ray {address or ''}: cannot connect to a Ray cluster ({str(e).splitlines()[0]})") from None
    try:
        task = ray.remote(_explain_task)
        config_yaml = OmegaConf.to_yaml(config)
        pending = {}
        for i, (image, target) in enumerate(zip(images, targets)):
            if isinstance(image, Exception):  # the driver could not open it: report, don't ship
                yield i, image
            else:
                pending[task.remote(config_yaml, image, target)] = i
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                yield i, ray.get(done[0])
            except ray.exceptions.RayError as e:  # a worker died: that image failed, the others go on
                yield i, e
    finally:
        if started:
            ray.shutdown()
