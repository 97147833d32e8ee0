"""Bad inputs, models and settings: one line naming the problem, a documented exit code, no traceback,
no output for the item. Odd-but-valid images are accepted. Every file is generated here."""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from decam.cli import main
from decam.io.images import MAX_SIDE, MIN_SIDE, open_image

RUN = ["--generations", "2", "--popsize", "4", "--quiet"]


def png_chunks(width: int, height: int, bit_depth: int = 8, color_type: int = 2, idat: bytes | None = None) -> bytes:
    """A PNG built by hand: any header, optional image data (omitted: header-only file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + (chunk(b"IDAT", idat) if idat is not None else b"")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming ``width``x``height`` with no pixel data behind it."""
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(dib), 0, 0, 14 + len(dib)) + dib


def write(name: str, data: bytes):
    def make(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(data)
        return [str(tmp / name)]

    return make


def good_png(tmp: Path) -> Path:
    path = tmp / "good.png"
    photo().save(path)
    return path


def special(kind: str):
    def make(tmp: Path) -> list[str]:
        path = tmp / "x.png"
        if kind == "missing":
            return [str(tmp / "missing.jpg")]
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dangling":
            path.symlink_to(tmp / "gone.png")
        elif kind == "loop":
            path.symlink_to(path)
        elif kind == "unreadable":
            photo().save(path)
            path.chmod(0)
        elif kind == "empty folder":
            path = tmp / "photos"
            path.mkdir()
        elif kind == "no images in folder":
            path = tmp / "photos"
            path.mkdir()
            (path / "notes.txt").write_text("hello")
        return [str(path)]

    return make


def with_args(*extra: str):
    """A good image plus extra CLI arguments."""
    return lambda tmp: [str(good_png(tmp)), *extra]


def config_file(text: str):
    def make(tmp: Path) -> list[str]:
        (tmp / "c.yaml").write_text(text)
        return [str(good_png(tmp)), "--config", str(tmp / "c.yaml")]

    return make


JPEG = encoded(photo(), "JPEG", quality=90)
PNG = encoded(photo(), "PNG")
GIF = encoded(photo().convert("P"), "GIF")
PNG_BAD_CRC = PNG[:40] + bytes([PNG[40] ^ 0xFF]) + PNG[41:]

# (id, builder → CLI arguments, expected exit code, expected message (regex), per-item failure?)
CASES = [
    ("missing file", special("missing"), 3, r"missing\.jpg: no such file", True),
    ("empty file", write("empty.jpg", b""), 3, r"empty\.jpg: empty file \(0 bytes\)", True),
    ("text named .jpg", write("notes.jpg", b"just some text\n" * 20), 3, r"not an image file", True),
    ("html named .png", write("page.png", b"<!doctype html><html></html>"), 3, r"not an image file", True),
    ("random bytes", write("noise.png", np.random.default_rng(1).bytes(4096)), 3, r"not an image file", True),
    ("EPS (decoder not allowed)", write("fig.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"), 3,
     r"not a supported format", True),
    ("SVG", write("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>'), 3,
     r"not an image file", True),
    ("truncated JPEG", write("cut.jpg", JPEG[: len(JPEG) // 2]), 3, r"cut\.jpg: cannot read image \(.*truncated", True),
    ("JPEG header only", write("head.jpg", JPEG[:160]), 3, r"head\.jpg: cannot read image \(corrupt or truncated JPEG", True),
    ("truncated PNG", write("cut.png", PNG[: len(PNG) // 2]), 3, r"cut\.png: cannot read image", True),
    ("PNG with a bad CRC", write("crc.png", PNG_BAD_CRC), 3, r"crc\.png: cannot read image \(corrupt or truncated PNG", True),
    ("PNG without pixel data", write("nodata.png", png_chunks(64, 64)), 3, r"nodata\.png: cannot read image", True),
    ("PNG with corrupt zlib data", write("zlib.png", png_chunks(64, 64, idat=b"not zlib at all")), 3,
     r"zlib\.png: cannot read image", True),
    ("truncated GIF", write("cut.gif", GIF[: len(GIF) // 3]), 3, r"cut\.gif: cannot read image", True),
    ("FIFO", special("fifo"), 3, r"x\.png: not a regular file", True),
    ("dangling symlink", special("dangling"), 3, r"x\.png: no such file", True),
    ("symlink loop", special("loop"), 3, r"x\.png: cannot access \(.*symbolic links", True),
    pytest.param("unreadable file", special("unreadable"), 3, r"x\.png: permission denied", True,
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")),
    ("empty folder", special("empty folder"), 3, r"photos: folder holds no image files", False),
    ("folder without images", special("no images in folder"), 3, r"photos: folder holds no image files", False),
    ("1x1 pixel", write("dot.png", encoded(photo(1, 1), "PNG")), 3, rf"dot\.png: image is 1x1 pixels; need at least {MIN_SIDE}", True),
    ("31x31 pixels", write("small.png", encoded(photo(31, 31), "PNG")), 3, r"small\.png: image is 31x31 pixels", True),
    ("thin strip 400x16", write("strip.png", encoded(photo(400, 16), "PNG")), 3, r"strip\.png: image is 400x16 pixels", True),
    ("side over 8000", write("wide.png", encoded(photo(MAX_SIDE + 1, 40), "PNG")), 3,
     rf"wide\.png: image is 8001x40 pixels; at most {MAX_SIDE} on each side", True),
    ("9000x9000 header", write("big.png", png_chunks(9000, 9000)), 3, r"big\.png: image is 9000x9000 pixels; at most", True),
    ("decompression bomb 100000x100000", write("bomb.png", png_chunks(100000, 100000)), 3,
     r"bomb\.png: image is too large \(.*decompression bomb", True),
    ("bomb warning size 8000x12000", write("tall.png", png_chunks(8000, 12000)), 3, r"tall\.png: image is too large", True),
    ("BMP header 20000x20000", write("huge.bmp", bmp_header(20000, 20000)), 3, r"huge\.bmp: image is too large|at most", True),
    ("target = number of classes", with_args("--target", "10"), 3, r"good\.png: target 10 is outside the model's 10 classes", True),
    ("negative target", with_args("--target", "-1"), 3, r"good\.png: target -1 is outside", True),
    ("huge target", with_args("--target", "123456789"), 3, r"target 123456789 is outside", True),
    ("model returns NaN", with_args("--model", "tiny_models:nan"), 4,
     r"good\.png: model returned NaN or infinite logits on the unmasked image", True),
    ("model returns inf", with_args("--model", "tiny_models:inf"), 4, r"model returned NaN or infinite logits", True),
    ("model NaN on masked images", with_args("--model", "tiny_models:nan_when_masked"), 4,
     r"good\.png: model returned NaN or infinite logits$", True),
    ("model returns (B,)", with_args("--model", "tiny_models:flat"), 4, r"model returned \(1,\) for one image; expected logits \(1, C\)", True),
    ("model ignores the batch size", with_args("--model", "tiny_models:one_row"), 4,
     r"model returned \(1, 10\) for a batch of 4 images", True),
    ("model returns a list", with_args("--model", "tiny_models:not_a_tensor"), 4, r"model returned list", True),
    ("model raises (multi-line message)", with_args("--model", "tiny_models:raises"), 4,
     r"good\.png: model raised RuntimeError: mat1 and mat2 shapes cannot be multiplied \(1x3 and 4x5\)", True),
    ("model raises on masked batches", with_args("--model", "tiny_models:raises_when_masked"), 4,
     r"model raised MemoryError: out of memory", True),
    ("model factory raises", with_args("--model", "tiny_models:broken_factory"), 2,
     r"broken_factory\(\) raised RuntimeError: checkpoint is corrupt", False),
    ("model module missing", with_args("--model", "no_such_module:f"), 2, r"model 'no_such_module:f': cannot import", False),
    ("model function missing", with_args("--model", "tiny_models:nope"), 2, r"cannot import", False),
    ("model factory returns 42", with_args("--model", "tiny_models:not_callable"), 2,
     r"model must be a registered name or a callable, got int", False),
    ("unknown model name", with_args("--model", "resnet9000"), 2, r"unknown model 'resnet9000'", False),
    ("device not available", with_args("device=cuda:7"), 2, r"device=cuda:7: no CUDA device", False),
    ("unknown config key", with_args("colour=red"), 2, r"unknown config key 'colour'", False),
    ("batch_size=0", with_args("batch_size=0"), 2, r"batch_size=0 is out of range", False),
    ("alpha=nan", with_args("alpha=nan"), 2, r"alpha=nan: expected a finite number", False),
    ("min_side > max_side", with_args("encoding.min_side=0.75"), 2, r"min_side=0.75 must be <= encoding.max_side", False),
    ("config file missing", with_args("--config", "nope.yaml"), 2, r"config file nope\.yaml does not exist", False),
    ("config file is a list", config_file("- 1\n- 2\n"), 2, r"expected a mapping", False),
    ("config file is not YAML", config_file("generations: [1,\n"), 2, r"cannot parse", False),
    ("config file tries to run code", config_file("generations: !!python/object/apply:os.system ['touch pwned']\n"),
     2, r"cannot parse", False),
    ("config interpolation (data only)", config_file("fill: ${oc.env:DECAM_TEST_SECRET}\n"), 2,
     r"fill='hunter2': expected one of black, mean, blur", False),
]


@pytest.mark.parametrize("case, make, code, message, per_item", CASES, ids=[
    c.values[0] if hasattr(c, "values") else c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_code_and_no_output(case, make, code, message, per_item, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)  # a config that managed to run code would leave ./pwned here
    monkeypatch.setenv("DECAM_TEST_SECRET", "hunter2")
    out = tmp_path / "out"
    args = make(tmp_path)
    if "--model" not in args:
        args += ["--model", "tiny_models:tiny"]
    rc = main(["explain", *args, "--out", str(out), *RUN])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("decam: error:")]
    assert rc == code, err
    assert len(errors) == 1 and re.search(message, errors[0]), err
    assert "Traceback" not in err
    assert not (tmp_path / "pwned").exists()
    left = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    if per_item:  # reported in the failures file, and nothing else written
        assert left == ["failures.csv"]
        rows = list(csv.DictReader((out / "failures.csv").open()))
        assert len(rows) == 1 and rows[0]["exit_code"] == str(code) and re.search(message, rows[0]["error"])
    else:
        assert left == []


def test_debug_shows_the_traceback(tmp_path, capsys):
    rc = main(["--debug", "explain", str(tmp_path / "missing.png"), "--model", "tiny_models:tiny", "--out",
               str(tmp_path / "out"), *RUN])
    assert rc == 3 and "Traceback" in capsys.readouterr().err


def test_output_folder_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    rc = main(["explain", str(good_png(tmp_path)), "--model", "tiny_models:tiny", "--out", str(tmp_path / "out"), *RUN])
    assert rc == 2 and "cannot create the output folder" in capsys.readouterr().err


def test_a_batch_keeps_going_and_lists_its_failures(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo().save(folder / "a.png")
    photo(80, 60).save(folder / "b.jpg")
    (folder / "c.jpg").write_bytes(JPEG[:200])
    (folder / "d.png").write_bytes(b"")
    photo(8, 8).save(folder / "e.png")
    out = tmp_path / "out"
    rc = main(["explain", str(folder), "--model", "tiny_models:tiny", "--out", str(out), *RUN])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "b.json"]
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert [Path(r["image"]).name for r in rows] == ["c.jpg", "d.png", "e.png"]
    assert [r["exit_code"] for r in rows] == ["3", "3", "3"]
    assert "3 of 5 images failed" in err and "Traceback" not in err
    assert not list(out.glob(".*"))  # no temporary files left

    (folder / "c.jpg").unlink(), (folder / "d.png").unlink(), (folder / "e.png").unlink()
    assert main(["explain", str(folder), "--model", "tiny_models:tiny", "--out", str(out), "--resume", *RUN]) == 0
    assert not (out / "failures.csv").exists()  # a clean rerun leaves no stale failure list


def test_output_names_cannot_escape_the_output_folder(tmp_path, capsys):
    from decam.io import safe_stem

    for name in ["../../etc/passwd", "..", ".hidden", "a/b\\c", "x" * 600, "ü" * 300, "con:1|2>3"]:
        stem = safe_stem(name)
        assert stem and "/" not in stem and "\\" not in stem and not stem.startswith(".")
        assert len(stem.encode()) + len(".saliency.npy") < 255
    assert safe_stem("a" * 200 + "1") != safe_stem("a" * 200 + "2")
    weird = tmp_path / "in" / ("..%2F.." + "é" * 110 + ".png")
    weird.parent.mkdir()
    photo().save(weird)
    out = tmp_path / "out"
    assert main(["explain", str(weird), "--model", "tiny_models:tiny", "--out", str(out), *RUN]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != weird.parent]
    assert written and all(p.parent == out for p in written)


# --- odd but valid images: accepted, converted to RGB ----------------------------------------------


def png16_rgb(width: int, height: int, rgb16: np.ndarray) -> bytes:
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(height))
    return png_chunks(width, height, 16, 2, zlib.compress(raw))


def exif_rotated(orientation: int) -> bytes:
    """Left half red, right half blue, 60x40 as stored; EXIF says how to turn it for display."""
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30] = (255, 0, 0)
    a[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.fromarray(a), "JPEG", exif=exif, quality=95)


def solid(mode: str, color, size=(40, 36), **info) -> Image.Image:
    im = Image.new(mode, size, color)
    im.info.update(info)
    return im


gradient16 = (np.arange(40 * 40).reshape(40, 40) * 40).astype(np.uint16)  # up to 63960
ODD = [
    ("grayscale L", encoded(solid("L", 200), "PNG"), (40, 36), (200, 200, 200)),
    ("grayscale + alpha LA", encoded(solid("LA", (0, 0)), "PNG"), (40, 36), (255, 255, 255)),
    ("1-bit", encoded(solid("1", 1), "PNG"), (40, 36), (255, 255, 255)),
    ("palette", encoded(solid("RGB", (10, 200, 30)).quantize(4), "PNG"), (40, 36), (10, 200, 30)),
    ("palette + transparency", encoded(solid("P", 0), "PNG", transparency=0), (40, 36), (255, 255, 255)),
    ("RGBA, transparent → white", encoded(solid("RGBA", (255, 0, 0, 0)), "PNG"), (40, 36), (255, 255, 255)),
    ("RGBA, opaque", encoded(solid("RGBA", (255, 0, 0, 255)), "PNG"), (40, 36), (255, 0, 0)),
    ("CMYK JPEG", encoded(solid("CMYK", (0, 255, 255, 0)), "JPEG", quality=100), (40, 36), (255, 0, 0)),
    ("MPO (phones' multi-picture JPEG)", encoded(solid("RGB", (200, 10, 10)), "MPO", save_all=True,
                                                 append_images=[solid("RGB", (0, 0, 0))]), (40, 36), (200, 10, 10)),
    ("16-bit grey PNG", encoded(Image.fromarray(gradient16), "PNG"), (40, 40), None),
    ("16-bit RGB PNG", png16_rgb(40, 40, np.full((40, 40, 3), 65535 // 2, np.uint16)), (40, 40), (127, 127, 127)),
    ("32-bit integer TIFF", encoded(Image.fromarray(np.full((40, 40), 1000, np.int32)), "TIFF"), (40, 40), (4, 4, 4)),
    ("float TIFF in [0, 1]", encoded(Image.fromarray(np.full((40, 40), 0.5, np.float32)), "TIFF"), (40, 40), (128, 128, 128)),
    ("float TIFF with NaN", encoded(Image.fromarray(np.where(np.arange(40) == 0, np.nan, 1.0)[:, None].repeat(40, 1).astype(np.float32)), "TIFF"),
     (40, 40), (255, 255, 255)),
    ("animated GIF (first frame)", None, (40, 36), (255, 0, 0)),
    ("WebP", encoded(solid("RGB", (0, 0, 255)), "WEBP", lossless=True), (40, 36), (0, 0, 255)),
    ("BMP", encoded(solid("RGB", (0, 255, 0)), "BMP"), (40, 36), (0, 255, 0)),
    ("PGM", encoded(solid("L", 77), "PPM"), (40, 36), (77, 77, 77)),
    ("PNG named .jpg", encoded(solid("RGB", (1, 2, 3)), "PNG"), (40, 36), (1, 2, 3)),
    ("exactly 32x32", encoded(solid("RGB", (9, 9, 9), (MIN_SIDE, MIN_SIDE)), "PNG"), (32, 32), (9, 9, 9)),
    ("8000x32", encoded(solid("RGB", (9, 9, 9), (MAX_SIDE, 32)), "PNG"), (8000, 32), (9, 9, 9)),
    ("EXIF orientation 6 (turn 90° clockwise)", exif_rotated(6), (40, 60), None),
    ("EXIF orientation 3 (turn 180°)", exif_rotated(3), (60, 40), None),
]


def animated_gif() -> bytes:
    frames = [solid("RGB", c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


@pytest.mark.parametrize("case, data, size, color", ODD, ids=[c[0] for c in ODD])
def test_odd_images_are_read_as_rgb(case, data, size, color, tmp_path):
    path = tmp_path / ("x.jpg" if "JPEG" in case or "EXIF" in case or ".jpg" in case else "x.img")
    path.write_bytes(animated_gif() if data is None else data)
    im = open_image(path)
    a = np.asarray(im).astype(int)
    assert im.mode == "RGB" and im.size == size
    if color is not None:
        assert np.abs(a[2, 2] - color).max() <= 3, a[2, 2]
    if case.startswith("16-bit grey"):
        assert a[0, 0, 0] == 0 and a[-1, -1, 0] == round(int(gradient16[-1, -1]) / 257)
    if "orientation 6" in case:  # stored left red / right blue → displayed top red / bottom blue
        assert a[5, 20, 0] > 200 > a[-5, 20, 0] and a[-5, 20, 2] > 200
    if "orientation 3" in case:  # upside down: left blue / right red
        assert a[20, 5, 2] > 200 and a[20, -5, 0] > 200


def test_odd_images_run_end_to_end(tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, (case, data, size, _) in enumerate(ODD):
        if data is not None and "8000" not in case:
            suffix = ".jpg" if "JPEG" in case or "EXIF" in case or ".jpg" in case else ".png"
            if "TIFF" in case:
                suffix = ".tif"
            elif "WebP" in case:
                suffix = ".webp"
            elif "BMP" in case:
                suffix = ".bmp"
            elif "PGM" in case:
                suffix = ".pgm"
            (folder / f"{i:02d}{suffix}").write_bytes(data)
    out = tmp_path / "out"
    rc = main(["explain", str(folder), "--model", "tiny_models:tiny", "--out", str(out), *RUN])
    assert rc == 0, capsys.readouterr().err
    assert len(list(out.glob("*.json"))) == len(list(folder.iterdir()))
