"""Progress bars on stderr (tqdm), redrawn every 30 s instead of every step when stderr is a log or pipe."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def bar(**kwargs: Any):
    """A tqdm bar on stderr; ``kwargs`` go to tqdm."""
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 30.0, **kwargs)


class SearchProgress:
    """One bar over all images' generations (or queries, with a budget), fed by the explainer's
    per-generation callback ``(image index, history entry)``."""

    def __init__(self, name: str, budget: int | None, generations: int, images: int = 1) -> None:
        self.budget, self.done = budget, {}
        self.bar = bar(total=images * (budget if budget is not None else generations), desc=Path(name).name,
                       unit="q" if budget else "gen", leave=False)

    def __call__(self, index: int, entry: dict) -> None:
        step = entry["queries"] - self.done.get(index, 0) if self.budget else 1
        self.done[index] = entry["queries"]
        self.bar.update(step)
        self.bar.set_postfix(best=f"{entry['best']:.3f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def search_progress(name: str, config, quiet: bool, images: int = 1) -> SearchProgress | None:
    """The bar for ``images`` searches with ``config``'s budget; None when ``quiet``."""
    return None if quiet else SearchProgress(name, config.budget, config.generations, images)
