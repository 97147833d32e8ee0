"""Reading images and bringing them to a model's input: every odd file format is handled here.

Accepted: JPEG (incl. CMYK and EXIF-rotated), PNG (8/16-bit, palette, alpha), BMP, GIF (first
frame), TIFF (incl. 32-bit integer and float), WebP, PPM/PGM. Sides must be between ``MIN_SIDE``
and ``MAX_SIDE`` pixels. Any problem is one :class:`~decam.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps

from decam.errors import InputError

MIN_SIDE = 32
"""Smallest accepted side: below it the upscale to the model input leaves no detail to explain."""
MAX_SIDE = 8000
"""Largest accepted side, checked from the file header before any pixel is decoded (memory bound)."""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""Pillow decoders decam lets run (JPEG includes phones' multi-picture MPO); no EPS, which starts Ghostscript."""


def default_image() -> tuple[str, Image.Image]:
    """The embedded quick-start photo: scikit-image's CC0 'coffee' (an espresso cup)."""
    from skimage import data

    return "coffee", Image.fromarray(data.coffee())


def open_image(path: str | Path) -> Image.Image:
    """An RGB PIL image, EXIF rotation applied; any problem becomes a one-line InputError."""
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:
                _check_size(path, *im.size)  # header only: nothing decoded yet
                im.load()
                im = _to_rgb(ImageOps.exif_transpose(im))
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{path}: image is too large ({_one_line(e)})") from None
    except Image.UnidentifiedImageError:
        fmt = _sniff(path)
        if fmt is not None:
            raise InputError(f"{path}: cannot read image (corrupt or truncated {fmt} file)") from None
        raise InputError(f"{path}: not an image file, or not a supported format ({', '.join(FORMATS)})") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: cannot read image ({_one_line(e)})") from None
    except Exception as e:  # decoders fail in many ways on corrupt files; all are the input's fault
        raise InputError(f"{path}: cannot read image ({type(e).__name__}: {_one_line(e)})") from None
    if min(im.size) < MIN_SIDE:
        raise InputError(f"{path}: image is {im.size[0]}x{im.size[1]} pixels; need at least {MIN_SIDE} on each side")
    return im


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
         b"MM\x00*": "TIFF", b"RIFF": "WebP"}


def _sniff(path: Path) -> str | None:
    """The format a file's first bytes announce, for files Pillow could not even open."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((fmt for magic, fmt in MAGIC.items() if head.startswith(magic)), None)


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot access ({_one_line(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise InputError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")


def _check_size(path: Path, width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise InputError(f"{path}: image is {width}x{height} pixels; at most {MAX_SIDE} on each side")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit RGB; transparency is composed over white."""
    if im.mode.startswith("I;16"):  # 16-bit grey
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).round().astype(np.uint8))
    elif im.mode in ("I", "F"):  # 32-bit integer or float grey
        im = Image.fromarray(_to_uint8(np.asarray(im, dtype=np.float64), unit_range=im.mode == "F"))
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def _to_uint8(a: np.ndarray, unit_range: bool) -> np.ndarray:
    """Float values in [0, 1] (``unit_range``) or values in [0, 255] keep their meaning, [0, 65535] is
    read as 16-bit; anything else is stretched to [0, 255]. NaN and infinities become 0."""
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if unit_range and lo >= 0 and hi <= 1:
        a = a * 255
    elif lo >= 0 and hi <= 255:
        pass
    elif lo >= 0 and hi <= 65535:
        a = a / 257
    else:
        a = 255 * (a - lo) / max(hi - lo, 1e-12)
    return a.round().clip(0, 255).astype(np.uint8)


def to_input(image: Image.Image, size: tuple[int, int], resize: int | None) -> torch.Tensor:
    """PIL image → ``(3, H, W)`` float tensor in [0, 1] at the model's input size (resize + centre crop)."""
    if resize is not None:
        image = TF.resize(image, resize, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        image = TF.center_crop(image, list(size))
    else:
        image = TF.resize(image, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.to_tensor(image)
