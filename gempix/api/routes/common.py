"""What the route modules share: documented error responses, image decoding, row shapes."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from fastapi import Request
from PIL import Image

from ...errors import ValidationError
from ...images import load_image
from ..errors import PayloadTooLarge
from ..schemas import ErrorOut, ImageOut, iso

_ERROR = {"model": ErrorOut}
DESCRIBED = {
    400: "Invalid request: the message names the field and the rule.",
    401: "Missing, unknown or revoked API key.",
    403: "The key's role may not do this, or the age confirmation is missing.",
    404: "Not found, or not yours (both look the same); for generate: no such character.",
    409: "A conflict: the account is being deleted, or (characters) the name is taken.",
    413: "Body or image too large.",
    429: "Rate limit reached; see Retry-After.",
    500: "Unexpected or database failure (a generic message; details in the server log).",
    503: "Busy or model unavailable.",
    504: "The generation ran past the time limit.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one error shape."""
    return {status: {**_ERROR, "description": DESCRIBED[status]} for status in statuses}


AUTHED = (400, 401, 429)  # every route with a key can answer these

_DATA_URL = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def decode_image(
    text: str, field: str, max_bytes: int, max_pixels: int
) -> tuple[bytes, Image.Image]:
    """Base64 (or a data: URL) to the bytes and the checked image (size, pixels, readable,
    not a bomb; upright RGB)."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    if len(text) > (max_bytes + 2) // 3 * 4 + 4:
        raise PayloadTooLarge(f"{field}: larger than {max_bytes:,} bytes.")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{field}: not valid base64.") from None
    return data, load_image(data, field, max_bytes=max_bytes, max_pixels=max_pixels)


def image_out(request: Request, row: dict[str, Any]) -> ImageOut:
    """A ``generations`` row (or a just-made image) as the API shows it."""
    params = row.get("params") or {}
    return ImageOut(
        id=row["id"],
        url=str(request.url_for("get_image", image_id=row["id"])),
        seed=int(row["seed"]),
        width=int(row["width"]),
        height=int(row["height"]),
        created_at=iso(row.get("created_at") or params.get("created_at")),
        consistency=params.get("consistency"),
        params=params,
    )
