"""``verify_image``: every provenance mark an image carries, read from any image.

Four independent checks, because each can be missing for its own reason: the C2PA manifest
(stripped by most social networks and by re-saving), the IPTC ``DigitalSourceType`` in XMP
(plain text: stripped or forged just as easily), the invisible watermark (survives
stripping, JPEG, resizing and cropping, not everything: docs/provenance.md) and GemPix's own
``gempix`` parameters chunk. An image with none of them says so; absence proves nothing
about how an image was made.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from ..images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, load_image, read_image_bytes
from ..metadata import AI_SOURCE_TYPE, XMP_KEY
from .detection import Detection, detect
from .reading import C2paCheck, read_c2pa
from .stamp import GEMPIX_IDENTIFIER

_SOURCE_TYPE = re.compile(rb"DigitalSourceType(?:\s*=\s*[\"']|\s*>\s*)([^\"'<\s]+)")


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    format: str
    width: int
    height: int
    c2pa: C2paCheck
    iptc_source_type: str | None  # IPTC DigitalSourceType found in XMP, if any
    watermark: Detection
    gempix_params: dict[str, Any] | None

    @property
    def ai_disclosed(self) -> bool:
        """Does the XMP say ``trainedAlgorithmicMedia`` (the IPTC "made by AI" label)?"""
        return self.iptc_source_type == AI_SOURCE_TYPE

    @property
    def marks(self) -> list[str]:
        """Which marks are present (an empty list: the image carries none of them)."""
        found = []
        if self.c2pa.status != "absent":
            found.append("c2pa")
        if self.iptc_source_type:
            found.append("iptc")
        if self.watermark.found:
            found.append("watermark")
        if self.gempix_params is not None:
            found.append("gempix_params")
        return found

    @property
    def gempix_watermark(self) -> bool:
        """Is GemPix's own watermark (identifier "GPX1") in the pixels?"""
        return self.watermark.found and self.watermark.identifier == GEMPIX_IDENTIFIER

    @property
    def watermark_text(self) -> str:
        if self.gempix_watermark:
            return "GemPix's invisible watermark found (made with GemPix)"
        if self.watermark.found:
            identifier = self.watermark.identifier
            return f"a mark in GemPix's layout with another identifier, {identifier:08x}"
        return "none found"

    def lines(self) -> list[str]:
        """The report in plain sentences, one per check."""
        chain = " <- ".join(
            f"{m.title or 'untitled'} ({m.claim_generator or 'unknown tool'})"
            for m in self.c2pa.chain
        )
        codes = f" [{', '.join(self.c2pa.codes)}]" if self.c2pa.codes else ""
        lines = [f"C2PA: {self.c2pa.status}. {self.c2pa.message}{codes}"]
        if chain:
            lines.append(f"C2PA chain: {chain}")
        lines.append(
            f"IPTC digital source type: {self.iptc_source_type}"
            if self.iptc_source_type
            else "IPTC digital source type: none in XMP."
        )
        lines.append(f"Watermark: {self.watermark_text} (score {self.watermark.score}).")
        lines.append(
            "GemPix parameters: present."
            if self.gempix_params is not None
            else "GemPix parameters: none."
        )
        if not self.marks:
            lines.append("This image carries no provenance mark GemPix knows.")
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["watermark"]["identifier"] = (
            f"{self.watermark.identifier:08x}" if self.watermark.found else None
        )
        data["watermark"]["gempix"] = self.gempix_watermark
        data["ai_disclosed"], data["marks"] = self.ai_disclosed, self.marks
        return data


def verify_image(
    source: bytes | str | Path,
    trust_anchors: str | None = None,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> VerifyReport:
    """Check ``source`` (bytes or a path) for C2PA, IPTC disclosure, watermark and parameters.

    ``trust_anchors`` (PEM) adds root certificates to trust, e.g. an operator's CA. Raises
    ``ValidationError`` naming ``image`` for what is not an image, or is over ``max_bytes``
    or ``max_pixels`` (by default the limits of ``gempix/images.py``).
    """
    data = read_image_bytes(source, max_bytes=max_bytes)
    pixels = load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)  # a bomb stops here
    with Image.open(io.BytesIO(data)) as image:
        info, kind = dict(image.info), image.format or "unknown"
    return VerifyReport(
        format=kind,
        width=pixels.width,
        height=pixels.height,
        c2pa=read_c2pa(data, Image.MIME.get(kind, "application/octet-stream"), trust_anchors),
        iptc_source_type=_source_type(info),
        watermark=detect(pixels),
        gempix_params=_gempix_params(info),
    )


def _source_type(info: dict[str, Any]) -> str | None:
    xmp = info.get(XMP_KEY) or info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    match = _SOURCE_TYPE.search(xmp) if isinstance(xmp, bytes) else None
    return match.group(1).decode("utf-8", "replace") if match else None


def _gempix_params(info: dict[str, Any]) -> dict[str, Any] | None:
    raw = info.get("gempix")
    if not isinstance(raw, str):
        return None
    try:
        params = json.loads(raw)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None
