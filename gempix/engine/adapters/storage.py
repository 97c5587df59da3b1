"""Reference embeddings as bytes, for the store: safetensors (never pickle), tagged with a format.

A saved character keeps its embeddings, so a generation with it runs no image-encoder pass.
"""

from __future__ import annotations

import json
import struct

from ...errors import ValidationError
from .embeddings import ReferenceEmbeddings

EMBEDDINGS_FORMAT = "gempix-reference-embeddings/1"


def embeddings_to_bytes(embeddings: ReferenceEmbeddings) -> bytes:
    from safetensors.torch import save

    tensors = {
        "image_embeds": embeddings.image_embeds.float().contiguous().cpu(),
        "hidden_states": embeddings.hidden_states.float().contiguous().cpu(),
    }
    return save(tensors, metadata={"format": EMBEDDINGS_FORMAT, "encoder": embeddings.encoder})


def _metadata(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError("too short")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("header length out of range")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def embeddings_from_bytes(data: bytes) -> ReferenceEmbeddings:
    """Inverse of ``embeddings_to_bytes``; anything else is a ``ValidationError``."""
    from safetensors.torch import load

    try:
        metadata = _metadata(data)
        if metadata.get("format") != EMBEDDINGS_FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        tensors = load(data)
        image_embeds, hidden = tensors["image_embeds"], tensors["hidden_states"]
        if image_embeds.ndim != 2 or hidden.ndim != 3 or hidden.shape[0] != image_embeds.shape[0]:
            raise ValueError("unexpected shapes")
    except Exception as error:  # safetensors raises its own error types too
        raise ValidationError(f"embeddings: not GemPix reference embeddings ({error}).") from None
    return ReferenceEmbeddings(image_embeds, hidden, metadata.get("encoder", ""))
