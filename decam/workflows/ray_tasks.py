"""``decam explain --ray`` and ``decam evaluate --ray``: one Ray task per image.

The driver opens each image and ships the decoded picture, so workers need no access to the
driver's files; each worker process builds its Explainer or Evaluation once per configuration,
loading the model once, and reuses it for its later tasks. Maps and scores equal those of a local
run with the same seed (each task seeds its own search).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from decam.distributed.cluster import in_order, spread
from decam.workflows.evaluate import Evaluation, ImageScores


def _decoded(path: str | Path) -> Any:
    """The picture at ``path``, opened on the driver; a bad file becomes that image's error."""
    from decam.io.images import open_image

    try:
        return open_image(path)
    except Exception as e:
        return e


@lru_cache(maxsize=2)
def _explainer(config_yaml: str):
    """One Explainer per worker process and config (the model loads once per worker)."""
    from decam.search.explainer import Explainer

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


@lru_cache(maxsize=2)
def _evaluation(spec: str) -> Evaluation:
    """One Evaluation per worker process and spec (the model loads once per worker); it writes nothing."""
    from decam.workflows.evaluate import Evaluation

    return Evaluation.from_spec(spec)


def _evaluate_task(spec: str, path: str, stem: str, image: Any) -> ImageScores | Exception:
    try:
        return _evaluation(spec).score(path, stem, image)
    except Exception as e:  # the Evaluation could not be built here: reported per image by the driver
        return e


def ray_evaluate(evaluation: Evaluation, spec: str, jobs: list[tuple[Path, str]], address: str | None = None,
                 num_cpus: int | None = None) -> Iterator[ImageScores]:
    """Score ``(path, stem)`` jobs on the cluster at ``address`` with the Evaluation that ``spec``
    describes, yielding each image's :class:`~decam.workflows.evaluate.ImageScores` in job order (for
    ``Evaluation.run(score_all=...)``). An image the driver cannot open, or whose task failed, is
    reported through ``evaluation`` itself, as in a local run."""
    # decoded one by one as the tasks are submitted, so the cluster starts on the first at once
    shipped = (image if isinstance(image := _decoded(path), Exception) else (str(path), stem, image)
               for path, stem in jobs)
    for i, result in in_order(spread(_evaluate_task, spec, shipped, address, num_cpus)):
        path, stem = jobs[i]
        yield evaluation.failed(path, stem, result) if isinstance(result, Exception) else result
