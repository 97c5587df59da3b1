"""Signing encoded image bytes with a C2PA manifest: the last byte step before serving.

``sign`` takes PNG, JPEG or WebP bytes and returns bytes of the same format with the
manifest embedded (the pixels and other metadata untouched). Anything that goes wrong raises
``ProvenanceError``: a caller never gets unsigned bytes back by accident. Thumbnails are off
(they add ~10-30 KB and a second copy of the picture) and so is every network fetch
(remote manifests, OCSP), so signing and reading work offline. Each signature is verified
right after signing (about 2 ms), so a key that does not match its certificate is an error
here rather than an image that fails validation later.
"""

from __future__ import annotations

import functools
import io

import c2pa

from ..errors import ProvenanceError
from .credentials import Credentials
from .manifest import Ingredient, ManifestFacts, edit_action, manifest_definition

OFFLINE_SETTINGS = {
    # verify_after_sign: a key that does not match its certificate fails here, not in a reader
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": True},
    "builder": {"thumbnail": {"enabled": False}},
}
_ALGORITHMS = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}


def media_type(data: bytes) -> str | None:
    """The media type of PNG, JPEG or WebP bytes, from their signature; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def context(trust_anchors: str | None = None) -> c2pa.Context:
    """A c2pa context that never touches the network; ``trust_anchors`` (PEM) are extra roots
    a reader should trust, e.g. an operator's own CA."""
    if trust_anchors is None:
        return _offline_context()
    settings = {**OFFLINE_SETTINGS, "trust": {"user_anchors": trust_anchors}}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


@functools.cache
def _offline_context() -> c2pa.Context:
    return c2pa.Context(c2pa.Settings.from_dict(OFFLINE_SETTINGS))


def sign(data: bytes, facts: ManifestFacts, credentials: Credentials) -> bytes:
    """``data`` with a signed C2PA manifest for ``facts`` embedded; same format, same pixels."""
    kind = media_type(data)
    if kind is None:
        raise ProvenanceError("image: C2PA signing takes PNG, JPEG or WebP bytes; got neither.")
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                _ALGORITHMS[credentials.algorithm], credentials.chain_pem, credentials.key_pem, None
            )
        )
        with signer, c2pa.Builder(manifest_definition(facts), _offline_context()) as builder:
            for ingredient in facts.ingredients:
                _add_ingredient(builder, ingredient)
            if facts.is_edit:
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
                builder.add_action(edit_action(facts))
            else:
                builder.set_intent(
                    c2pa.C2paBuilderIntent.CREATE,
                    c2pa.C2paDigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                )
            signed = io.BytesIO()
            builder.sign(signer, kind, io.BytesIO(data), signed)
    except (c2pa.C2paError, ValueError, TypeError) as error:
        raise ProvenanceError(f"C2PA signing failed: {error}") from None
    return signed.getvalue()


def _add_ingredient(builder: c2pa.Builder, ingredient: Ingredient) -> None:
    kind = media_type(ingredient.data)
    if kind is None:
        raise ProvenanceError(
            f"ingredients: {ingredient.title!r} must be PNG, JPEG or WebP bytes to be listed."
        )
    definition = {"title": ingredient.title, "relationship": ingredient.relationship}
    builder.add_ingredient(definition, kind, io.BytesIO(ingredient.data))
