"""A search checkpointed each generation continues where it stopped: same map, no query paid twice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decam.config import load_config
from decam.search.checkpoint import Checkpoint
from decam.search.explainer import Explainer
from decam.testing import BoxOracle

IMAGE = torch.ones(3, 48, 48)


class Flaky(BoxOracle):
    """The oracle, failing once after ``fail_after`` images (a server that dies mid-search)."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__((8, 30, 24, 46))
        self.fail_after = fail_after

    def __call__(self, x):
        if self.fail_after is not None and self.calls + x.shape[0] > self.fail_after:
            self.fail_after = None
            raise ConnectionError("server went away")
        return super().__call__(x)


def explainer(model, **values) -> Explainer:
    cfg = load_config(None, [{"generations": 12, "searcher.popsize": 8, "fill": "black", "seed": 5, **values}])
    return Explainer(model, cfg)


@pytest.mark.parametrize("values", [{}, {"converge": 0.9, "min_generations": 4, "generations": 40}])
def test_resumed_search_gives_the_uninterrupted_map_without_paying_twice(tmp_path, values, one_thread):
    whole = explainer(BoxOracle((8, 30, 24, 46)), **values).explain(IMAGE)

    flaky = Flaky(fail_after=1 + 8 * 3)  # the unmasked image and 2 generations (the first costs 2 × 8)
    ex = explainer(flaky, **values)
    with pytest.raises(Exception, match="server went away"):
        ex.explain(IMAGE, checkpoint=tmp_path / "img.search.pt")
    paid = flaky.calls
    resumed = ex.explain(IMAGE, checkpoint=tmp_path / "img.search.pt")
    assert np.array_equal(resumed.saliency, whole.saliency)
    assert resumed.queries == whole.queries and resumed.history == whole.history
    assert resumed.stopped == whole.stopped
    assert flaky.calls == whole.queries  # every image scored once over both attempts
    assert paid < whole.queries


def test_a_checkpoint_of_another_search_or_a_broken_file_is_not_continued(tmp_path, one_thread):
    path = tmp_path / "img.search.pt"
    explainer(BoxOracle((8, 30, 24, 46))).explain(IMAGE, checkpoint=path)
    assert path.is_file()
    other = explainer(BoxOracle((8, 30, 24, 46)), alpha=3.0)  # another config: its own search from scratch
    first = other.explain(IMAGE)
    assert np.array_equal(other.explain(IMAGE, checkpoint=path).saliency, first.saliency)
    path.write_bytes(path.read_bytes()[:100])  # truncated by a full disk or a copy
    assert Checkpoint(path, "anything").load() is None
    assert np.array_equal(other.explain(IMAGE, checkpoint=path).saliency, first.saliency)
