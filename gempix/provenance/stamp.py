"""The one object a service holds to mark its images: watermark the pixels, sign the bytes.

The order matters and is fixed: (1) ``watermark`` the finished picture (after any upscale),
(2) encode it with its metadata (``gempix/metadata.py`` ``save_png``, or
``gempix/export.py`` for a JPEG/WebP download), (3) ``sign`` the encoded bytes, last,
because any byte changed after signing invalidates the manifest. Then serve the signed bytes
as they are.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from . import signing, watermark
from .credentials import Credentials, resolve_credentials
from .manifest import ManifestFacts

GEMPIX_IDENTIFIER = 0x47505831  # "GPX1": the same in every installation, so any verify finds it


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

    def watermark(self, picture: Image.Image) -> Image.Image:
        """Mark ``picture`` with GemPix's fixed identifier.

        One identifier for every image and installation: a stripped copy says "made with
        GemPix" to any verifier, and points to no record or user. An upscale or edit of a
        GemPix image still carries its source's mark (a 2x upscale of a 1024 px image puts it
        exactly on the new tile grid); the same identifier reinforces it instead of garbling
        both."""
        return watermark.embed(picture, GEMPIX_IDENTIFIER)

    def sign(self, data: bytes, facts: ManifestFacts) -> bytes:
        return signing.sign(data, facts, self.credentials)
