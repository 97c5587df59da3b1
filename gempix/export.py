"""Downloads in other formats: a stored PNG as JPEG or WebP at a chosen quality.

A 4K PNG is 10-25 MB; a JPEG or WebP of it is a tenth of that. The stored file stays PNG
(lossless, written with ``PNG_COMPRESS_LEVEL``); conversion happens per download. What the PNG
carries goes along: the AI-generated XMP disclosure, the ``parameters`` text (as EXIF
UserComment, where image tools look for it in a JPEG) and the Software tag. A PNG written
without the prompt yields an export without it too.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from .errors import ValidationError, whole
from .metadata import XMP_KEY

FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DEFAULT_QUALITY = 90
EXIF_SOFTWARE = 0x0131
EXIF_IFD = 0x8769
EXIF_USER_COMMENT = 0x9286


def check_format(fmt: object) -> str:
    key = str(fmt).strip().lower().lstrip(".")
    if key not in FORMATS:
        raise ValidationError(f"format: {fmt!r} is not supported; choose one of png, jpeg, webp.")
    return FORMATS[key]


def export_image(
    png_path: str | Path, format: str = "jpeg", quality: int = DEFAULT_QUALITY
) -> bytes:
    """The image at ``png_path`` encoded as ``format`` (png, jpeg, webp) at ``quality`` (1-100).

    PNG returns the stored bytes unchanged. JPEG at quality 90 and above keeps full colour
    resolution (4:4:4); below, Pillow's 4:2:0.
    """
    target = check_format(format)
    quality = whole(quality, "quality", 1, 100)
    path = Path(png_path)
    if not path.is_file():
        raise ValidationError(f"image: no such file: {path.name}")
    if target == "PNG":
        return path.read_bytes()
    with Image.open(path) as image:
        image.load()
        info = dict(image.info)
        picture = image.convert("RGB")
    exif = Image.Exif()
    if info.get("Software"):
        exif[EXIF_SOFTWARE] = info["Software"]
    if info.get("parameters"):
        exif.get_ifd(EXIF_IFD)[EXIF_USER_COMMENT] = b"UNICODE\x00" + info["parameters"].encode(
            "utf-16-be"
        )
    options: dict = {"quality": quality, "exif": exif}
    xmp = info.get(XMP_KEY) or info.get("xmp")
    if xmp:
        options["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    if target == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2
    else:
        options["method"] = 4  # WebP: 0 fastest .. 6 smallest; 4 is libwebp's default
    buffer = io.BytesIO()
    picture.save(buffer, target, **options)
    return buffer.getvalue()
