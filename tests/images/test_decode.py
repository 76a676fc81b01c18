"""pool3.images.decode: messy files decode or fail with the right category; TF1 bilinear resize."""

from __future__ import annotations

import io
import pickle
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from paths import IMAGES
from pool3.images.decode import (
    CATEGORIES,
    ImageDecodeError,
    decode,
    decode_image,
    sniff_format,
)
from pool3.images.resize import resize_bilinear_tf1


def read(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with the IHDR's size (and CRC) rewritten."""
    ihdr = struct.pack(">II", width, height) + png[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return png[:16] + ihdr + crc + png[33:]


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("empty.jpg", "empty"),
        ("truncated.jpg", "truncated"),
        ("truncated.png", "truncated"),
        ("html.jpg", "not_an_image"),
        ("random.jpg", "not_an_image"),
        ("bomb.png", "too_large"),
        ("unsupported.jp2", "unsupported_format"),
        ("corrupt.png", "corrupt"),
        ("corrupt.jpg", "corrupt"),
    ],
)
def test_bad_files_raise_their_category(name: str, category: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(read(name))
    assert info.value.category == category
    assert str(info.value).startswith(f"{category}: ")
    assert isinstance(info.value, ValueError)


def test_categories_are_the_documented_six() -> None:
    assert set(CATEGORIES) == {
        "empty",
        "truncated",
        "not_an_image",
        "too_large",
        "unsupported_format",
        "corrupt",
    }
    with pytest.raises(ValueError, match="unknown category"):
        ImageDecodeError("broken", "x")


def test_decode_error_survives_pickle() -> None:
    err = ImageDecodeError("truncated", "jpeg: 81 bytes missing")
    back = pickle.loads(pickle.dumps(err))
    assert (back.category, back.detail, str(back)) == (err.category, err.detail, str(err))


@pytest.mark.parametrize(
    ("name", "fmt", "shape"),
    [
        ("baseline.jpg", "jpeg", (107, 160, 3)),
        ("progressive.jpg", "jpeg", (107, 160, 3)),
        ("grey.jpg", "jpeg", (107, 160, 3)),
        ("cmyk.jpg", "jpeg", (16, 32, 3)),
        ("exif_orientation6.jpg", "jpeg", (107, 160, 3)),
        ("flower.png", "png", (43, 64, 3)),
        ("alpha.png", "png", (24, 36, 3)),
        ("palette.png", "png", (43, 64, 3)),
        ("palette_transparent.png", "png", (16, 16, 3)),
        ("grey16.png", "png", (4, 256, 3)),
        ("one_pixel.png", "png", (1, 1, 3)),
        ("animated.gif", "gif", (20, 20, 3)),
        ("flower.webp", "webp", (43, 64, 3)),
        ("flower.bmp", "bmp", (43, 64, 3)),
        ("flower.tiff", "tiff", (43, 64, 3)),
        ("names/café_1.jpg", "jpeg", (11, 16, 3)),
    ],
)
def test_good_files_decode_to_rgb_uint8(name: str, fmt: str, shape: tuple[int, ...]) -> None:
    data = read(name)
    pixels = decode_image(data)
    assert sniff_format(data) == fmt
    assert pixels.shape == shape
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous


def test_sniff_format_refuses_or_ignores_unknown_signatures() -> None:
    assert sniff_format(read("unsupported.jp2")) == "jpeg2000"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif" + bytes(20)) == "avif"
    assert sniff_format(b'<?xml version="1.0"?><svg xmlns="x"/>') == "svg"
    assert sniff_format(read("html.jpg")) is None
    assert sniff_format(b"") is None


@pytest.mark.parametrize("name", ["flower.webp", "flower.bmp", "flower.tiff"])
def test_lossless_formats_equal_the_png(name: str) -> None:
    np.testing.assert_array_equal(decode_image(read(name)), decode_image(read("flower.png")))


def test_palette_png_is_close_to_the_rgb_original() -> None:
    diff = decode_image(read("palette.png")).astype(int) - decode_image(read("flower.png"))
    assert np.abs(diff).mean() < 10


def test_animated_gif_gives_its_first_frame() -> None:
    assert (decode_image(read("animated.gif")) == (255, 0, 0)).all()


def test_alpha_is_composited_on_white() -> None:
    pixels = decode_image(read("alpha.png"))
    assert (pixels[:, :12] == (255, 0, 0)).all()  # opaque red stays red
    assert (pixels[:, 12:24] == (255, 255, 255)).all()  # hidden blue does not show
    assert (np.abs(pixels[:, 24:].astype(int) - 127) <= 1).all()  # 50% black on white


def test_palette_transparency_is_composited_on_white() -> None:
    pixels = decode_image(read("palette_transparent.png"))
    assert (pixels[:, :8] == (255, 255, 255)).all()
    assert (pixels[:, 8:] == (200, 30, 30)).all()


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    pixels = decode_image(read("grey16.png"))  # row values are 257 * k, k = 0..255
    np.testing.assert_array_equal(pixels[..., 0], np.tile(np.arange(256), (4, 1)))
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_greyscale_jpeg_becomes_three_equal_channels() -> None:
    pixels = decode_image(read("grey.jpg"))
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels.std() > 10


def test_adobe_cmyk_jpeg_has_sensible_colours() -> None:
    pixels = decode_image(read("cmyk.jpg")).astype(int)
    left, right = pixels[:, 2:14].reshape(-1, 3), pixels[:, 18:30].reshape(-1, 3)
    assert (left[:, 0] > 200).all() and (left[:, 1:] < 50).all()  # red, not cyan
    assert (right[:, 2] > 200).all() and (right[:, :2] < 50).all()  # blue, not yellow


def test_progressive_jpeg_matches_baseline() -> None:
    progressive = decode_image(read("progressive.jpg")).astype(int)
    assert np.abs(progressive - decode_image(read("baseline.jpg"))).mean() < 1


def test_exif_orientation_is_off_by_default_and_rotates_when_asked() -> None:
    data = read("exif_orientation6.jpg")
    stored = decode_image(data)
    upright = decode_image(data, apply_exif_orientation=True)
    assert stored.shape == (107, 160, 3)
    assert upright.shape == (160, 107, 3)
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))  # 6 = 90 deg clockwise


def test_max_pixels_is_checked_from_the_header() -> None:
    data = read("baseline.jpg")
    assert decode_image(data, max_pixels=160 * 107).shape == (107, 160, 3)
    with pytest.raises(ImageDecodeError, match="160x107 = 17120 pixels") as info:
        decode_image(data, max_pixels=160 * 107 - 1)
    assert info.value.category == "too_large"


@pytest.mark.parametrize("side", [60_000, 10_000, 8_000])
def test_bomb_headers_are_refused_quickly(side: int) -> None:
    # 8000^2 is under Pillow's warning limit, 10000^2 between warning and error, 60000^2 above.
    bomb = with_ihdr_size(read("bomb.png"), side, side)
    start = time.perf_counter()
    with warnings.catch_warnings(), pytest.raises(ImageDecodeError) as info:
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        decode_image(bomb)
    assert time.perf_counter() - start < 0.5
    assert info.value.category == "too_large"
    if side <= 10_000:
        assert f"{side}x{side}" in info.value.detail  # our check, not Pillow's


def test_twelve_megapixel_jpeg_is_decoded_at_reduced_scale(tmp_path: Path) -> None:
    china = Image.fromarray(load_sample_images().images[0])
    big = china.resize((4000, 3000), Image.Resampling.BILINEAR)
    path = tmp_path / "big.jpg"
    big.save(path, format="JPEG", quality=85)
    data = path.read_bytes()

    reduced = decode_image(data)
    assert reduced.shape == (375, 500, 3)  # 1/8 scale: both sides >= 299, far below 4000
    full = decode_image(data, target_size=4000)  # no draft: sides not > 2 * target
    assert full.shape == (3000, 4000, 3)
    # DCT scaling is an 8x8 area average of the full decode, give or take rounding.
    area = np.asarray(Image.fromarray(full).reduce(8)).astype(int)
    assert np.abs(reduced - area).mean() < 1 and np.abs(reduced - area).max() <= 8
    half = decode_image(data, target_size=1000)
    assert half.shape == (1500, 2000, 3)  # 1/2 scale keeps both sides >= 1000
    assert np.abs(resize_bilinear_tf1(half) - resize_bilinear_tf1(full)).mean() < 3


def test_draft_only_when_both_sides_exceed_twice_the_target() -> None:
    data = read("baseline.jpg")  # 160x107
    exact = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(decode_image(data, target_size=54), exact)  # 107 <= 108
    assert decode_image(data, target_size=53).shape == (54, 80, 3)  # 107 > 106: 1/2 scale


def test_resize_follows_tf1_legacy_coordinates() -> None:
    # TF1 (half_pixel_centers=False): output d samples d * in / out; the last row is clamped.
    img = np.array([[[0], [10]], [[20], [30]]], dtype=np.uint8)
    out = resize_bilinear_tf1(img, 4)[..., 0]
    expected = [[0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]]
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    assert out.dtype == np.float32


def test_resize_to_the_same_size_is_identity() -> None:
    square = decode_image(read("baseline.jpg"))[:, :107]
    np.testing.assert_array_equal(resize_bilinear_tf1(square, 107), square)


def test_decode_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        decode_image(read("baseline.jpg"), target_size=0)


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 5), (2, 0, 3)])
def test_resize_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="height, width"):
        resize_bilinear_tf1(np.zeros(shape, np.uint8))


def _chunk(kind: bytes, data: bytes, *, crc_off: int = 0) -> bytes:
    crc = (zlib.crc32(kind + data) + crc_off) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def test_png_damage_tolerated_where_viewers_tolerate_it() -> None:
    png = (IMAGES / "flower.png").read_bytes()
    sound = decode(png).pixels
    # an ancillary chunk (text, time) with a bad CRC is dropped, as libpng does
    for kind, data in ((b"tEXt", b"Comment\x00hi"), (b"tIME", b"\x07\xea\x0c\x01\x00\x00\x00")):
        damaged = png[:33] + _chunk(kind, data, crc_off=1) + png[33:]
        with pytest.raises(Exception):  # Pillow alone refuses it
            Image.open(io.BytesIO(damaged)).load()
        assert np.array_equal(decode(damaged).pixels, sound)
    # bytes after IEND, and a file without IEND whose image data is complete
    assert np.array_equal(decode(png + b"\0garbage" * 8).pixels, sound)
    assert np.array_equal(decode(png[:-12]).pixels, sound)


def test_png_and_jpeg_damage_refused_where_pixels_would_be_wrong() -> None:
    png = bytearray((IMAGES / "flower.png").read_bytes())
    png[32] ^= 1  # IHDR's CRC: a critical chunk
    with pytest.raises(ImageDecodeError) as err:
        decode(bytes(png))
    assert err.value.category == "corrupt"
    jpeg = (IMAGES / "baseline.jpg").read_bytes()
    assert jpeg.endswith(b"\xff\xd9")
    with pytest.raises(ImageDecodeError) as err:
        decode(jpeg[:-2])  # no end marker: its last scan lines may be missing
    assert err.value.category == "truncated"
