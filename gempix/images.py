"""Reading untrusted images: the one gate every uploaded or referenced picture passes through.

Uploads come from browsers, API clients and CLI paths, so this guards against what a hostile
or careless caller sends: non-images, truncated files, decompression bombs, huge files, and
odd modes (CMYK, alpha, 16-bit, palette). The result is always an EXIF-upright RGB image.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ValidationError

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096

ImageSource = str | Path | bytes | Image.Image


def load_image(
    source: ImageSource,
    field: str = "image",
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Open, check and normalise an image; raise ``ValidationError`` naming ``field``."""
    return to_rgb(open_image(source, field, max_bytes, max_pixels))


def open_image(
    source: ImageSource,
    field: str = "image",
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Open and check an image, EXIF-upright, in its own mode (a mask keeps its alpha)."""
    if isinstance(source, Image.Image):
        image = source
    else:
        data = read_image_bytes(source, field, max_bytes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except (
            UnidentifiedImageError,
            Image.DecompressionBombWarning,
            Image.DecompressionBombError,
        ):
            raise ValidationError(f"{field}: not a readable image (PNG, JPEG, WebP...).") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ValidationError(
            f"{field}: {width}x{height} is too large; the limit is {max_pixels:,} pixels "
            f"(e.g. 4096x4096)."
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError):
        raise ValidationError(f"{field}: the image file is truncated or corrupt.") from None
    return ImageOps.exif_transpose(image)


def load_mask(source: ImageSource, field: str = "mask") -> Image.Image:
    """A mask as 8-bit greyscale, white where the image may change.

    A picture with transparency (a brush layer drawn over nothing, as the web app's editor
    sends it) is read by its alpha: painted means change. Anything else by its brightness.
    """
    image = open_image(source, field)
    if "A" in image.getbands() or image.mode == "P" and "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return alpha
    return to_rgb(image).convert("L")


def pixel_digest(image: Image.Image) -> str:
    """SHA-256 of an image's size and RGB pixels (the same picture in any file format)."""
    rgb = image if image.mode == "RGB" else to_rgb(image)
    return hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode() + rgb.tobytes()).hexdigest()


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: alpha is composited on white, 16-bit is scaled, CMYK converted."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):  # 16-bit greyscale (PNG loads it as I;16 or I)
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "A" in image.getbands():
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def read_image_bytes(
    source: str | Path | bytes, field: str = "image", max_bytes: int = MAX_IMAGE_BYTES
) -> bytes:
    """The bytes of a path or bytes, refused when missing, empty or over ``max_bytes``."""
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ValidationError(f"{field}: no such file: {path}")
        if path.stat().st_size > max_bytes:
            raise ValidationError(
                f"{field}: file is {path.stat().st_size:,} bytes; the limit is {max_bytes:,}."
            )
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise ValidationError(f"{field}: {len(data):,} bytes; the limit is {max_bytes:,}.")
    if not data:
        raise ValidationError(f"{field}: the file is empty.")
    return data
