"""Mask encodings: genome tensors ``(N, G)`` → masks ``(N, H, W)``. See ``base.Encoding``."""

from decam.encodings.base import Encoding

__all__ = ["Encoding"]
