"""The one object a service holds to mark its images: watermark the pixels, sign the bytes.

The order matters and is fixed: (1) ``watermark`` the finished picture (after any upscale),
(2) encode it with its metadata (``gempix/metadata.py`` ``save_png``, or
``gempix/export.py`` for a JPEG/WebP download), (3) ``sign`` the encoded bytes, last,
because any byte changed after signing invalidates the manifest. Then serve the signed bytes
as they are.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from PIL import Image

from . import signing, watermark
from .credentials import Credentials, resolve_credentials
from .manifest import ManifestFacts

HEX_DIGITS = set("0123456789abcdef")


def identifier_for(image_id: str) -> int:
    """The watermark's 32-bit identifier for an image id: its first 8 hex digits (GemPix ids
    are uuid4 hex, so the mark points back to the record), else the CRC-32 of the id."""
    head = image_id[:8].lower()
    if len(head) == 8 and set(head) <= HEX_DIGITS:
        return int(head, 16)
    return zlib.crc32(image_id.encode("utf-8"))


class Provenance:
    """Credentials loaded once (a bad certificate fails at start-up, not per image)."""

    def __init__(self, credentials: Credentials):
        self.credentials = credentials

    @classmethod
    def from_paths(
        cls,
        folder: str | Path,
        cert_path: str | Path | None = None,
        key_path: str | Path | None = None,
    ) -> Provenance:
        """The operator's PEM chain and key when given, else the local signer in ``folder``."""
        return cls(resolve_credentials(folder, cert_path, key_path))

    def watermark(self, picture: Image.Image, image_id: str) -> Image.Image:
        """Mark ``picture`` with the identifier of ``image_id``.

        For an upscale or edit of a GemPix image pass the id of the image it descends from
        (the root of its chain): the source's mark is still in the pixels, and a 2x upscale
        of a 1024 px image puts it exactly on the new tile grid, where two different
        identifiers would garble each other; the same identifier reinforces itself."""
        return watermark.embed(picture, identifier_for(image_id))

    def sign(self, data: bytes, facts: ManifestFacts) -> bytes:
        return signing.sign(data, facts, self.credentials)
