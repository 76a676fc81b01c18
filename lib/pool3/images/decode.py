"""Image bytes to RGB pixels (numpy and Pillow); the tutorial's resize is in :mod:`.resize`.

Formats
    JPEG and PNG are first-class. GIF (first frame of an animation), WebP (first frame),
    BMP and TIFF (first page) are decoded by Pillow too. JPEG 2000, JPEG XL, AVIF, HEIF,
    PSD, ICO and SVG are recognised and refused (``unsupported_format``): their decoders
    are optional in Pillow builds, so features would depend on how each executor was built.
Colour
    Greyscale, palette, CMYK (Adobe-inverted CMYK JPEGs are handled by Pillow; no ICC
    colour management) and YCbCr become RGB. Images with transparency (alpha channel,
    or a palette/tRNS transparent colour) are composited on white: product photos are shot
    on white, while dropping alpha shows whatever colour hides under transparent pixels
    (often black). 16-bit greyscale is scaled to 8 bits as ``round(v / 257)``, so 65535
    becomes 255 rather than being clipped.
EXIF orientation
    Ignored by default: the tutorial's TensorFlow graph (``DecodeJpeg``) did not apply it,
    and its features are what we reproduce. ``apply_exif_orientation=True`` applies it
    with :func:`PIL.ImageOps.exif_transpose`.
Size
    The pixel count in the header is checked against ``max_pixels`` before any pixel is
    decoded. Pillow's own guard (``DecompressionBombError`` above
    ``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP) is left as configured, and also
    reported as ``too_large``. JPEGs whose both sides exceed ``2 * target_size`` are
    decoded at a reduced DCT scale (Pillow draft mode) that keeps both sides
    >= ``target_size``; smaller images are decoded exactly.
Damage
    Tolerant where viewers are and the pixels are intact: a PNG ancillary chunk (text,
    time, colour hints) with a bad CRC is dropped, as libpng does, instead of failing the
    image; bytes after a JPEG's end marker or a PNG's ``IEND`` are ignored; a PNG without
    ``IEND`` decodes when its image data is complete. Strict where pixels would be wrong or
    made up: a JPEG that ends before its end marker is ``truncated`` (its last scan lines
    may be missing; Pillow cannot tell), a critical PNG chunk (``IHDR``, ``PLTE``) with a bad
    CRC is ``corrupt``, and so are bytes before the signature.

Size (over ~300 lines): one module decides, for every format, a bad image's category.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

EMPTY = "empty"
"""Zero bytes."""
TRUNCATED = "truncated"
"""A JPEG or PNG that ends before its end marker."""
NOT_AN_IMAGE = "not_an_image"
"""No known image signature: HTML error pages, text, random bytes."""
TOO_LARGE = "too_large"
"""The header claims more pixels than allowed; refused before decoding."""
UNSUPPORTED_FORMAT = "unsupported_format"
"""An image format (or pixel type) we recognise and refuse."""
CORRUPT = "corrupt"
"""Any other decode failure."""
CATEGORIES = (EMPTY, TRUNCATED, NOT_AN_IMAGE, TOO_LARGE, UNSUPPORTED_FORMAT, CORRUPT)

SUPPORTED_FORMATS = ("jpeg", "png", "gif", "webp", "bmp", "tiff")
REFUSED_FORMATS = ("jpeg2000", "jpegxl", "avif", "heif", "psd", "ico", "svg")
_PIL_FORMAT = {fmt: fmt.upper() for fmt in SUPPORTED_FORMATS}
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xffO\xffQ", "jpeg2000"),
    (b"\xff\n", "jpegxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jpegxl"),
    (b"8BPS", "psd"),
    (b"\x00\x00\x01\x00", "ico"),
)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# What Pillow raises on malformed input (UnidentifiedImageError is an OSError).
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)


@dataclass(frozen=True)
class DecodedImage:
    """Decoded pixels with the image's own size (from its header) and format."""

    pixels: np.ndarray
    width: int
    height: int
    format: str


class ImageDecodeError(ValueError):
    """An image that cannot be decoded; ``category`` is one of :data:`CATEGORIES`."""

    def __init__(self, category: str, detail: str) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail

    def __reduce__(self) -> tuple[type[ImageDecodeError], tuple[str, str]]:
        # Spark pickles worker exceptions; rebuild from both fields, not from the message.
        return (type(self), (self.category, self.detail))


def sniff_format(data: bytes) -> str | None:
    """Name the image format from its magic bytes.

    Returns
    -------
    str or None
        One of :data:`SUPPORTED_FORMATS` or :data:`REFUSED_FORMATS`, or None when no known
        signature matches.
    """
    head = bytes(data[:32])
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "heif"
    text = bytes(data[:1024]).lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "svg"
    return None


def decode(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    target_size: int = 299,
    apply_exif_orientation: bool = False,
) -> DecodedImage:
    """Decode encoded image bytes to RGB pixels, keeping the file's own size and format.

    Parameters
    ----------
    data : bytes
        The whole file content (e.g. the ``content`` column of Spark's binaryFile source).
    max_pixels : int
        Refuse images whose header claims more than ``width * height`` pixels.
    target_size : int
        Side the caller resizes to; JPEGs larger than twice this on both sides are decoded
        at a reduced scale whose sides are still >= ``target_size``.
    apply_exif_orientation : bool
        Rotate/flip as the EXIF Orientation tag says (default False, like the tutorial).

    Returns
    -------
    DecodedImage
        ``pixels`` of shape (h, w, 3), uint8 RGB, C-contiguous (smaller than the file's
        ``width`` x ``height`` when a big JPEG was decoded at reduced scale).

    Raises
    ------
    ImageDecodeError
        With ``category`` in :data:`CATEGORIES` and a human-readable ``detail``.
    """
    if max_pixels < 1 or target_size < 1:
        raise ValueError(
            f"max_pixels and target_size must be >= 1, got {max_pixels} and {target_size}"
        )
    if len(data) == 0:
        raise ImageDecodeError(EMPTY, "the file has zero bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageDecodeError(NOT_AN_IMAGE, _describe_unknown(data))
    if fmt not in SUPPORTED_FORMATS:
        raise ImageDecodeError(
            UNSUPPORTED_FORMAT, f"{fmt} is refused; supported: {', '.join(SUPPORTED_FORMATS)}"
        )
    if fmt == "png":
        data = drop_damaged_ancillary_chunks(data)
    # Our own limit is checked from the header; Pillow's softer warning would only be noise
    # (or an exception under -W error). Spark runs a worker's UDF in one thread.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = _open_checked(data, fmt, max_pixels)
        width, height = img.size
        if fmt == "jpeg" and min(img.size) > 2 * target_size:
            # Decode at 1/2, 1/4 or 1/8 scale; Pillow picks one leaving both sides >= target.
            img.draft("RGB", (target_size, target_size))
        try:
            img.load()
        except Image.DecompressionBombError as err:  # a GIF frame or TIFF tile over the limit
            raise ImageDecodeError(TOO_LARGE, f"{fmt}: {err}") from err
        except _PIL_ERRORS as err:
            raise ImageDecodeError(_failure_category(data, fmt, err), f"{fmt}: {err}") from err
    if apply_exif_orientation:
        img = _exif_transpose(img)
        if img.size[0] != img.size[1] and (img.size[0] < img.size[1]) != (width < height):
            width, height = height, width
    return DecodedImage(_to_rgb_array(img), width, height, fmt)


def decode_image(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    target_size: int = 299,
    apply_exif_orientation: bool = False,
) -> np.ndarray:
    """RGB pixels of encoded image bytes: :func:`decode` without the size and format."""
    return decode(
        data,
        max_pixels=max_pixels,
        target_size=target_size,
        apply_exif_orientation=apply_exif_orientation,
    ).pixels


def drop_damaged_ancillary_chunks(data: bytes) -> bytes:
    """``data`` without the PNG ancillary chunks whose CRC is wrong (libpng's default).

    Ancillary chunks (first letter lower case: ``tEXt``, ``tIME``, ``gAMA``, ...) carry no
    pixels; one with a bad CRC is dropped and the image decodes. Critical chunks and the
    bytes after ``IEND`` are left as they are (Pillow then decides). Returns ``data`` itself
    when nothing is dropped, so a sound file costs one pass over its chunk headers.
    """
    pos, spans, dropped = 8, [(0, 8)], False
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data) or not kind.isalpha():  # truncated, or off the chunk grid
            break
        if kind[0] & 0x20:  # ancillary
            (crc,) = struct.unpack(">I", data[end - 4 : end])
            if zlib.crc32(memoryview(data)[pos + 4 : end - 4]) != crc:
                logger.debug("dropping PNG %r chunk with a bad CRC", kind)
                dropped = True
                pos = end
                continue
        spans.append((pos, end))
        pos = end
        if kind == b"IEND":
            break
    if not dropped:
        return data
    spans.append((pos, len(data)))
    return b"".join(data[a:b] for a, b in spans)


def _open_checked(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Read the header only, and refuse oversized images before any pixel is decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(TOO_LARGE, f"{fmt} header, Pillow's guard: {err}") from err
    except UnidentifiedImageError as err:
        detail = f"{fmt} signature but Pillow cannot parse the header"
        raise ImageDecodeError(_failure_category(data, fmt, err), detail) from err
    except _PIL_ERRORS as err:
        raise ImageDecodeError(_failure_category(data, fmt, err), f"{fmt}: {err}") from err
    width, height = img.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            TOO_LARGE,
            f"{fmt} header claims {width}x{height} = {width * height} pixels, "
            f"more than max_pixels={max_pixels}",
        )
    return img


def _describe_unknown(data: bytes) -> str:
    head = bytes(data[:64])
    if head.lstrip().startswith(b"<"):
        kind = "HTML/XML text"
    elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        kind = "text"
    else:
        kind = "unknown binary data"
    return f"no image signature; looks like {kind} (first bytes {head[:8].hex(' ')})"


def _failure_category(data: bytes, fmt: str, err: BaseException) -> str:
    if "truncated" in str(err).lower():
        return TRUNCATED
    tail = bytes(data[-64:]).rstrip(b"\x00\r\n ")
    if fmt == "jpeg" and not tail.endswith(b"\xff\xd9"):
        return TRUNCATED
    if fmt == "png" and b"IEND" not in tail[-12:]:
        return TRUNCATED
    return CORRUPT


def _exif_transpose(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except _PIL_ERRORS as err:
        # A broken EXIF block should not cost the image: keep the stored orientation.
        logger.warning("ignoring unreadable EXIF orientation: %s", err)
        return img


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img).astype(np.uint32).clip(0, 65535)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "F":
        raise ImageDecodeError(UNSUPPORTED_FORMAT, "floating-point pixels have no display range")
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            rgb = img if mode == "RGB" else img.convert("RGB")
    except ValueError as err:
        raise ImageDecodeError(UNSUPPORTED_FORMAT, f"pixel mode {mode}: {err}") from err
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
