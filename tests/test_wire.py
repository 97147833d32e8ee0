"""decam's HTTP protocol on its own: .npy bodies in and out, exact where promised, and every malformed
body refused with one line (never unpickled, never half-read)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from decam.models.wire import (WireError, as_logits, decode, decode_images, decode_scores, encode, encode_images,
                               encode_scores, model_info)


def test_images_round_trip_exactly_in_float32_even_from_channels_last():
    x = torch.rand(5, 3, 17, 11).contiguous(memory_format=torch.channels_last)
    y = decode_images(bytearray(encode_images(x)))
    assert y.dtype == torch.float32 and y.shape == x.shape and torch.equal(y, x)


def test_float16_images_are_half_the_bytes_and_within_its_rounding():
    x = torch.rand(4, 3, 32, 32)
    full, half = encode_images(x), encode_images(x, "float16")
    assert len(half) < 0.51 * len(full)
    assert (decode_images(half) - x).abs().max() <= 2**-11


def test_our_encoding_is_numpys_npy_format():
    a = np.arange(24, dtype="<f4").reshape(2, 3, 4)
    assert np.array_equal(np.load(io.BytesIO(encode(a))), a)
    buf = io.BytesIO()
    np.save(buf, a)
    assert np.array_equal(decode(buf.getvalue()), a)


def test_decode_reads_bytes_without_a_copy_and_a_bytearray_in_place():
    body = bytearray(encode_images(torch.rand(2, 3, 8, 8)))
    x = decode_images(body)
    body[-4:] = np.float32(7.0).tobytes()
    assert x[-1, -1, -1, -1] == 7.0  # the tensor views the request body


@pytest.mark.parametrize("body, message", [
    (b"", "not a .npy array"),
    (b"<html>502 Bad Gateway</html>", "not a .npy array"),
    (encode(np.zeros((2, 3), np.float32))[:-4], "needs 24"),
    (pickle.dumps(np.zeros(3)), "not a .npy array"),
    (b"\x93NUMPY\x09\x00" + b"\x00" * 20, "format version 9"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'} ", "unreadable .npy header"),
])
def test_malformed_bodies_are_one_line_errors(body, message):
    with pytest.raises(WireError, match=message) as info:
        decode(body)
    assert "\n" not in str(info.value)


def test_object_arrays_are_refused_not_unpickled():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(WireError, match="C-ordered numbers"):
        decode(buf.getvalue())


@pytest.mark.parametrize("array", [np.zeros((2, 3, 8), np.float32), np.zeros((2, 4, 8, 8), np.float32),
                                   np.zeros((2, 3, 8, 8), np.int64), np.zeros((0, 3, 8, 8), np.float32)])
def test_images_must_be_a_float_batch_of_rgb(array):
    with pytest.raises(WireError, match=r"expected float images \(B, 3, H, W\)"):
        decode_images(encode(array))


def test_scores_are_checked_for_shape_and_finiteness():
    good = encode_scores(torch.randn(3, 10))
    assert decode_scores(good, 3).shape == (3, 10)
    with pytest.raises(WireError, match=r"for 4 images; expected scores \(4, C\)"):
        decode_scores(good, 4)
    with pytest.raises(WireError, match="NaN or infinite"):
        decode_scores(encode(np.array([[0.0, np.nan]], np.float32)), 1)
    assert decode_scores(encode(np.array([[1, 2]], np.float64)), 1).dtype == torch.float32


def test_probabilities_become_log_probabilities_with_the_same_softmax():
    p = torch.tensor([[0.7, 0.2, 0.1, 0.0]])
    logits = as_logits(p, "probabilities")
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits.softmax(-1), p, atol=1e-6)
    with pytest.raises(WireError, match=r"outside \[0, 1\]"):
        as_logits(torch.tensor([[3.0, -1.0]]), "probabilities")
    assert as_logits(p, "logits") is p


def test_model_info_is_plain_json():
    import json

    info = model_info("m", (224, 200), 256, ["a", "b"], 2, ((0.5,) * 3, (0.5,) * 3), 64)
    assert json.loads(json.dumps(info))["input_size"] == [224, 200]
    assert info["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3} and info["protocol"] == "decam-npy/1"
