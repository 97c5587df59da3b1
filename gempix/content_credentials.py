"""``studio.provenance``: the one place where every image GemPix writes gets its credentials.

Every door's images pass through here, as the last byte step: generations (CLI, HTTP API,
web app, batch: ``Studio._save``), upscales (``Studio.upscale``), the JPEG and WebP downloads
(``gallery.Images.download``), and edits (issue 19) when they land. Each is watermarked with
GemPix's fixed identifier, encoded, and signed with a C2PA manifest; the signed bytes are
what is stored and served, never re-encoded. A signing failure raises ``ProvenanceError``
and nothing is written: no door can produce an unsigned image by accident.

What the manifest says is decided here, once: the model preset and its license, the prompt
only when ``GEMPIX_METADATA_PROMPT`` allows it, the user's training consent at this moment
(``notAllowed`` unless they opted in), and the pictures the image was made from as
ingredients (``parentOf`` for the source of an edit, upscale or image-to-image, ``inputTo``
for references a model was shown). ``verify`` is the core of ``gempix verify``,
``POST /api/v1/verify``, the web app's Verify tab and the MCP tool. The mechanics live in
``gempix/provenance/`` (docs/provenance.md).
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .engine.presets import PRESETS
from .errors import NotFoundError
from .images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, ImageSource, read_image_bytes
from .metadata import save_png
from .params import GenerationRequest
from .provenance import (
    Credentials,
    Ingredient,
    ManifestFacts,
    Provenance,
    VerifyReport,
    verify_image,
)
from .provenance.signing import media_type

if TYPE_CHECKING:
    from .service import Studio

PROVENANCE_DIR = "provenance"  # in the data dir: the local signer (0600, in a 0700 folder)


@dataclasses.dataclass(frozen=True)
class Source:
    """A picture an image was made from, as a caller has it (a path, encoded bytes or a PIL
    image), with a title for the chain and its C2PA relationship (see
    ``provenance.manifest.Ingredient``). Bytes and files keep their own manifest in the
    chain; a PIL image is listed by the hash of a PNG of its pixels."""

    image: ImageSource
    title: str
    relationship: str = "parentOf"


class ContentCredentials:
    """Watermark, sign and verify for one studio. The signing credentials are loaded on
    first use (commands that write no image never make keys) or by ``check`` at start-up."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self._provenance: Provenance | None = None
        self._lock = threading.Lock()

    @property
    def credentials(self) -> Credentials:
        return self._signer().credentials

    def check(self) -> Credentials:
        """Load the credentials now, so a bad GEMPIX_C2PA_CERT/KEY stops a server at start."""
        return self.credentials

    def _signer(self) -> Provenance:
        with self._lock:
            if self._provenance is None:
                settings = self.studio.settings
                self._provenance = Provenance.from_paths(
                    settings.data_dir / PROVENANCE_DIR,
                    settings.c2pa_cert or None,
                    settings.c2pa_key or None,
                )
            return self._provenance

    def facts(
        self,
        user_id: str,
        params: dict[str, Any],
        sources: Iterable[Source] = (),
        *,
        action: str = "c2pa.edited",
        ai_edit: bool = True,
    ) -> ManifestFacts:
        """What the manifest of an image with ``params`` says, for ``user_id`` now.

        ``sources``: what it was made from; a ``parentOf`` source makes it an EDIT whose
        ``action`` is ``c2pa.edited`` (``ai_edit``: a model did it) or ``c2pa.resized``.
        """
        model = str(params.get("model") or "unknown")
        preset = PRESETS.get(model)
        return ManifestFacts(
            model=model,
            model_license=preset.license if preset else "",
            prompt=str(params.get("prompt") or ""),
            include_prompt=self.studio.settings.metadata_prompt,
            training_allowed=self.training_allowed(user_id),
            ingredients=tuple(_ingredient(source) for source in sources),
            action=action,
            ai_edit=ai_edit,
        )

    def training_allowed(self, user_id: str) -> bool:
        """The user's training consent now (an account without a row, like the local
        operator who never opted in, has not consented)."""
        try:
            return self.studio.privacy.consent(user_id)["training"].granted
        except NotFoundError:
            return False

    def save(
        self, picture: Image.Image, path: Path, params: dict[str, Any], facts: ManifestFacts
    ) -> Path:
        """Watermark ``picture``, write it as a PNG with its metadata, signed last with
        ``facts`` (from ``facts()``: once per request, its images share them)."""
        signer = self._signer()
        return save_png(
            signer.watermark(picture),
            path,
            params,
            include_prompt=self.studio.settings.metadata_prompt,
            finish=lambda data: signer.sign(data, facts),
        )

    def sign_copy(
        self, data: bytes, stored: Path, params: dict[str, Any], *, user_id: str
    ) -> bytes:
        """A JPEG/WebP conversion ``data`` of the stored PNG ``stored``, signed as its
        transcoded copy: the PNG (with its manifest and chain) is the ``parentOf``
        ingredient, so the AI disclosure and the chain come along."""
        facts = self.facts(
            user_id,
            params,
            [Source(stored, "GemPix image (PNG)")],
            action="c2pa.transcoded",
            ai_edit=False,
        )
        return self._signer().sign(data, facts)

    def verify(
        self,
        source: bytes | str | Path,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        max_pixels: int = MAX_IMAGE_PIXELS,
    ) -> VerifyReport:
        """Every provenance mark ``source`` carries: C2PA validity and chain, IPTC
        disclosure, GemPix's watermark, GemPix parameters. Any image works; a non-image or
        one over the limits is a ``ValidationError`` naming ``image``."""
        return verify_image(source, max_bytes=max_bytes, max_pixels=max_pixels)


def request_sources(request: GenerationRequest) -> list[Source]:
    """The pictures a generation request brought: the init image is the ``parentOf`` source
    (image-to-image is an edit of it), style and one-off references were shown to the model
    (``inputTo``). Titles say what each was, never a file name."""
    sources = []
    if request.init_image is not None:
        sources.append(Source(request.init_image, "init image"))
    if request.style_image is not None:
        sources.append(Source(request.style_image, "style reference", "inputTo"))
    for number, reference in enumerate(request.references, start=1):
        sources.append(Source(reference, f"reference {number}", "inputTo"))
    return sources


def _ingredient(source: Source) -> Ingredient:
    image = source.image
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=1)  # listed by hash only: speed over size
        data = buffer.getvalue()
    else:
        data = read_image_bytes(image, source.title)
        if media_type(data) is None:  # e.g. a GIF or BMP upload: list its pixels
            with Image.open(io.BytesIO(data)) as picture:
                return _ingredient(dataclasses.replace(source, image=picture.convert("RGB")))
    return Ingredient(data, source.title, source.relationship)
