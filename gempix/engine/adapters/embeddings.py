"""Reference images through the pipeline's image encoder: embeddings and the consistency score.

One encoder pass gives both what the style (plain) adapter reads and what the character (plus)
adapter reads. Each embedding records which encoder made it (``encoder_id``), so embeddings
made for one model are never fed to another. These only read the encoder: no lock needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ...images import ImageSource, to_rgb
from ..consistency import similarity
from .limits import check_references
from .loading import adapter_set, require_adapters


@dataclasses.dataclass(frozen=True)
class ReferenceEmbeddings:
    """One encoder pass over 1-4 reference images, float32 on the CPU.

    ``image_embeds`` (n, projection_dim) feed the plain (style) adapter and the consistency
    score; ``hidden_states`` (n, tokens, width), the encoder's penultimate layer, feed the plus
    (character) adapter, as diffusers' ``encode_image(output_hidden_states=True)`` does.
    """

    image_embeds: Any
    hidden_states: Any
    encoder: str

    @property
    def count(self) -> int:
        return int(self.image_embeds.shape[0])


def _pixel_values(loaded, images: list):
    pixels = loaded.pipe.feature_extractor(images, return_tensors="pt").pixel_values
    encoder = loaded.pipe.image_encoder
    return pixels.to(device=encoder.device, dtype=encoder.dtype)


def embed_images(loaded, images: Sequence[ImageSource]) -> ReferenceEmbeddings:
    """Embed 1-4 reference images with the pipeline's image encoder: one encoder pass."""
    import torch

    state = require_adapters(loaded)
    pictures = check_references(images)
    with torch.inference_mode():
        out = loaded.pipe.image_encoder(_pixel_values(loaded, pictures), output_hidden_states=True)
    return ReferenceEmbeddings(
        image_embeds=out.image_embeds.float().cpu(),
        hidden_states=out.hidden_states[-2].float().cpu(),
        encoder=state.encoder_id,
    )


def embeddings_match(loaded, embeddings: ReferenceEmbeddings) -> bool:
    """True when ``embeddings`` were made by this pipeline's image encoder (cache still valid)."""
    state = adapter_set(loaded)
    return state is not None and embeddings.encoder == state.encoder_id


def consistency_score(loaded, output_image, reference_embeddings) -> float:
    """Cosine similarity in [-1, 1] between the output's CLIP image embedding and the mean of
    the references' (``ReferenceEmbeddings`` or an (n, dim) tensor): one encoder pass, scored
    by ``consistency.similarity`` like every other family's."""
    import torch

    require_adapters(loaded)
    references = getattr(reference_embeddings, "image_embeds", reference_embeddings)
    with torch.inference_mode():
        pixels = _pixel_values(loaded, [to_rgb(output_image)])
        embedding = loaded.pipe.image_encoder(pixels).image_embeds[0]
    return similarity(embedding, references)
