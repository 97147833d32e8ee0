"""Oracle black boxes: models whose evidence sits in a known region, so a test (yours or decam's)
can check that a search finds it. Each also says where its evidence is (``region_mask``)."""

from __future__ import annotations

import numpy as np
import torch

#: ``(top, left, side)`` of the square oracle's evidence square in a 48 × 48 image.
DEFAULT_REGION = (10, 24, 16)


def oracle_image(size: int = 48, region: tuple[int, int, int] = DEFAULT_REGION, seed: int = 0) -> torch.Tensor:
    """A ``(3, size, size)`` image: dim smooth texture in [0.2, 0.6] with the region painted a bright red.

    Every pixel is at least 0.2, so the oracle can read the kept fraction from a black-filled input.
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, size // 4, size // 4, generator=gen)
    image = 0.2 + 0.4 * torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear")[0]
    top, left, side = region
    image[:, top : top + side, left : left + side] = torch.tensor([0.9, 0.3, 0.3])[:, None, None]
    return image


def box_mask(height: int, width: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    """Boolean ``(height, width)`` map of ``box = (top, left, bottom, right)``."""
    top, left, bottom, right = box
    out = torch.zeros(height, width, dtype=torch.bool)
    out[top:bottom, left:right] = True
    return out


def region_mask(size: int = 48, region: tuple[int, int, int] = DEFAULT_REGION) -> torch.Tensor:
    """Boolean ``(size, size)`` map of the square oracle's evidence square ``(top, left, side)``."""
    top, left, side = region
    return box_mask(size, size, (top, left, top + side, left + side))


class BoxOracle:
    """A black box whose class-0 logit is ``scale`` × the fraction of a hidden box a masked image keeps.

    The kept fraction is the box's pixel values relative to ``reference`` (default: an all-ones
    image), so it expects black-filled inputs ``M ⊙ image``. Class 1 is the constant
    ``rival`` × ``scale``. ``calls`` counts the images it has scored.
    """

    def __init__(self, box: tuple[int, int, int, int], reference: torch.Tensor | None = None,
                 scale: float = 10.0, rival: float = 0.5) -> None:
        top, left, bottom, right = box
        self.box, self.scale, self.rival, self.calls = box, float(scale), float(rival), 0
        self.rows, self.cols = slice(top, bottom), slice(left, right)
        self.patch = None if reference is None else reference[:, self.rows, self.cols]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        part = x[:, :, self.rows, self.cols]
        if self.patch is None:
            kept = part.mean(dim=(1, 2, 3))
        else:
            kept = (part / self.patch.to(x)).mean(dim=(1, 2, 3)).clamp(0.0, 1.0)
        return torch.stack([self.scale * kept, torch.full_like(kept, self.rival * self.scale)], dim=1)

    def region_mask(self, height: int, width: int) -> torch.Tensor:
        return box_mask(height, width, self.box)


class SquareOracle(BoxOracle):
    """:class:`BoxOracle` on :func:`oracle_image`: class-0 logit = ``scale`` × the kept fraction of the
    square ``region = (top, left, side)`` of ``image``; class 1 is always 0."""

    def __init__(self, image: torch.Tensor, region: tuple[int, int, int] = DEFAULT_REGION, scale: float = 4.0) -> None:
        top, left, side = region
        super().__init__((top, left, top + side, left + side), reference=image, scale=scale, rival=0.0)


class BoxesOracle:
    """Several classes, each with its own evidence box: class ``i``'s logit is ``scale`` × the kept
    fraction of ``boxes[i]`` (on a bright image, black fill); a last class is the constant ``rival``
    × ``scale``. Tests that one search maps each class onto its own box."""

    def __init__(self, boxes: list[tuple[int, int, int, int]], scale: float = 10.0, rival: float = 0.3) -> None:
        self.oracles = [BoxOracle(box, scale=scale, rival=rival) for box in boxes]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        columns = [oracle(x)[:, 0] for oracle in self.oracles]
        return torch.stack([*columns, self.oracles[0](x)[:, 1]], dim=1)

    def region_mask(self, index: int, height: int, width: int) -> torch.Tensor:
        return self.oracles[index].region_mask(height, width)


def evidence_image(size: int = 64, region: tuple[int, int, int] = (23, 36, 18), kind: str = "texture",
                   seed: int = 0) -> torch.Tensor:
    """A ``(3, size, size)`` photo-like image whose ``region = (top, left, side)`` (≈ 8 % of the image by
    default) differs from its surroundings only in ``kind``: ``texture`` (fine stripes around the same
    mean colour) or ``colour`` (a flat orange patch on the greyish surroundings)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, size // 8, size // 8, generator=gen)
    image = 0.35 + 0.3 * torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear")[0]
    image = image.mean(dim=0, keepdim=True).expand(3, -1, -1).clone()  # greyish, smooth
    top, left, side = region
    patch = image[:, top:top + side, left:left + side]
    if kind == "texture":
        cols = torch.arange(side) + torch.arange(side)[:, None]
        patch += 0.25 * torch.where(cols % 4 < 2, 1.0, -1.0)  # diagonal stripes, period 4 px
    elif kind == "colour":
        patch[:] = torch.tensor([0.85, 0.5, 0.15])[:, None, None]  # a flat orange patch
    else:
        raise ValueError(f"kind={kind!r}: expected texture or colour")
    return image.clamp(0, 1)


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    return x - torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class EvidenceOracle:
    """A black box that looks only at one kind of evidence in ``region`` of ``image``
    (:func:`evidence_image`): class 0's logit is ``scale`` × how much of it a masked input keeps.

    ``texture``: the correlation of the region's fine detail (the image minus its 3×3 local mean)
    with the original's — any smooth fill (blur, mean, black) removes it. ``colour``: the
    orangeness (red minus blue) of the flat orange patch, read 5 pixels in from its edges,
    relative to the original's — a blur (radius 5) leaves a flat patch's inside as it is, so only
    a fill of another colour removes this evidence. Class 1 is the constant ``rival`` × ``scale``.
    """

    def __init__(self, image: torch.Tensor, region: tuple[int, int, int] = (23, 36, 18), kind: str = "texture",
                 scale: float = 10.0, rival: float = 0.3) -> None:
        top, left, side = region
        inset = 0 if kind == "texture" else 5  # colour is read inside the patch, where a blur leaves it alone
        self.rows, self.cols = slice(top + inset, top + side - inset), slice(left + inset, left + side - inset)
        self.kind = kind
        self.box, self.scale, self.rival = (top, left, top + side, left + side), scale, rival
        self.reference = self._feature(image[None])[0]

    def _feature(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "texture":
            return _high_pass(x)[:, :, self.rows, self.cols].flatten(1)
        x = x[:, :, self.rows, self.cols]
        return (x[:, 0] - x[:, 2]).clamp(min=0).mean(dim=(1, 2))[:, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        f = self._feature(x.float())
        ref = self.reference.to(f)
        kept = (f @ ref) / (ref @ ref) if self.kind == "texture" else f[:, 0] / ref[0]
        kept = kept.clamp(0.0, 1.0)
        return torch.stack([self.scale * kept, torch.full_like(kept, self.rival * self.scale)], dim=1)

    def region_mask(self, height: int, width: int) -> torch.Tensor:
        return box_mask(height, width, self.box)


def top_share(saliency: np.ndarray, region: torch.Tensor | np.ndarray) -> float:
    """Of the region's area in most salient pixels, the fraction that lie in the region (top-k precision,
    k = the region's area; chance = the region's share of the image)."""
    region = np.asarray(region, dtype=bool)
    top = np.argsort(np.asarray(saliency).ravel())[::-1][: region.sum()]
    return float(region.ravel()[top].mean())
