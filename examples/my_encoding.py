from typing import Annotated
import torch
import decam
from decam.encodings.base import Encoding

@decam.register_encoding("blobs")
class Blobs(Encoding):
    """A mask is the union of K soft Gaussian blobs, 3 genes each (centre x, centre y, radius)."""
    def __init__(self, K: Annotated[int, decam.Range(1, 100)] = 6, max_radius: float = 0.2) -> None:
        self.K, self.max_radius = K, max_radius  # the type hints are the config schema: encoding.K=0 is an error

    genome_length = property(lambda self: 3 * self.K)

    def render(self, genomes: torch.Tensor) -> torch.Tensor:  # genomes (N, 3K) -> masks (N, H, W) in [0, 1]
        g = genomes.reshape(-1, self.K, 3).clamp(0.0, 1.0)  # any real genome must give a valid mask
        cx, cy = g[..., 0, None, None] * self.width, g[..., 1, None, None] * self.height
        sigma = (0.02 + g[..., 2, None, None] * self.max_radius) * max(self.height, self.width)
        ys = torch.arange(self.height, device=g.device, dtype=g.dtype)[:, None] + 0.5
        xs = torch.arange(self.width, device=g.device, dtype=g.dtype)[None, :] + 0.5
        return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).amax(dim=1)
