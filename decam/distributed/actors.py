"""A model forward spread over Ray actors: config ``actors=N`` (and ``gpus_per_actor``).

Each actor loads the model by name once (from a :class:`~decam.models.ForwardSpec`, picklable)
and runs a slice of every batch; rendering, compositing and the search stay in this process, so a
search with actors gives the same map as one without.
"""

from __future__ import annotations

import torch

from decam.distributed.cluster import connect
from decam.models.runtime import ForwardSpec


class _ModelActor:
    """Runs one copy of the model, built on the actor's GPU when it was given one."""

    def __init__(self, spec: ForwardSpec, use_gpu: bool) -> None:
        self.forward = spec.build("cuda" if use_gpu else "cpu")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x.to(self.forward.device)).float().cpu()


class ActorPool:
    """``forward(x)``: ``x`` split over ``actors`` Ray actors, their logits concatenated in order.

    Joins the Ray cluster this process is connected to, else ``$RAY_ADDRESS`` or one that
    ``ray start`` started here, else a new local instance (decam.distributed.cluster.connect).
    """

    def __init__(self, spec: ForwardSpec, actors: int, gpus_per_actor: float = 0.0) -> None:
        connect()
        import ray

        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_actor or 0)(_ModelActor)
        self.actors = [actor.remote(spec, gpus_per_actor > 0) for _ in range(int(actors))]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import ray

        parts = [p for p in x.detach().cpu().contiguous().tensor_split(len(self.actors)) if len(p)]
        refs = [a.__call__.remote(p) for a, p in zip(self.actors, parts)]
        return torch.cat(ray.get(refs)).to(x.device)

    def close(self) -> None:
        """Stop the actors (their models go with them)."""
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
