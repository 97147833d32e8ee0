"""Reading images and bringing them to a model's input: every odd file format is handled here."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps

from decam.errors import InputError

MIN_SIDE = 8
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def default_image() -> tuple[str, Image.Image]:
    """The embedded quick-start photo: scikit-image's CC0 'coffee' (an espresso cup)."""
    from skimage import data

    return "coffee", Image.fromarray(data.coffee())


def open_image(path: str | Path) -> Image.Image:
    """An RGB PIL image, EXIF rotation applied; any problem becomes a one-line InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image is too large (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except Image.UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: cannot read image ({e})") from None
    if min(im.size) < MIN_SIDE:
        raise InputError(f"{path}: image is {im.size[0]}x{im.size[1]} pixels; need at least {MIN_SIDE} on each side")
    return im


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: rescale to 8 bits
        a = np.asarray(im, dtype=np.float64)
        a = (255 * (a - a.min()) / max(a.max() - a.min(), 1e-12)).astype(np.uint8)
        im = Image.fromarray(a)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def to_input(image: Image.Image, size: tuple[int, int], resize: int | None) -> torch.Tensor:
    """PIL image → ``(3, H, W)`` float tensor in [0, 1] at the model's input size (resize + centre crop)."""
    if resize is not None:
        image = TF.resize(image, resize, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        image = TF.center_crop(image, list(size))
    else:
        image = TF.resize(image, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.to_tensor(image)


def fill_image(image: torch.Tensor, kind: str) -> torch.Tensor:
    """What eliminated pixels become: ``black`` (zeros, the paper), per-channel ``mean``, or ``blur``
    (Gaussian, kernel 11, σ=5, the insertion metric's starting image)."""
    if kind == "black":
        return torch.zeros_like(image)
    if kind == "mean":
        return image.mean(dim=(-2, -1), keepdim=True).expand_as(image).clone()
    if kind == "blur":
        return TF.gaussian_blur(image.unsqueeze(0), kernel_size=[11, 11], sigma=[5.0, 5.0])[0]
    raise ValueError(f"unknown fill {kind!r}")
