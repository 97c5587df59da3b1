"""A request's style reference and character, resolved into the model's conditioning.

SD models read them through IP-Adapter embeddings. FLUX.2 klein and Qwen-Image-Edit read
reference pictures natively: a character's saved reference images are passed to the pipeline
as its own reference images (``image=[...]``), and the character's consistency score comes
from the one scoring encoder every family shares (``engine/consistency.py``).

A saved character keeps its reference embeddings in the store (``characters.embeddings``): the
first generation with it on a model computes them (one image-encoder pass) and stores them,
and every later one reads them back and runs no encoder for the references. Embeddings made by
another model's encoder are recomputed (each records its encoder). A character is looked up
among the caller's own only, so another user's id reads as "not found", like a missing one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .engine import adapters, consistency, zerogpu
from .engine.adapters import Conditioning, ReferenceEmbeddings
from .engine.models import LoadedModel
from .errors import NotFoundError, ValidationError
from .images import load_image, pixel_digest
from .params import DEFAULT_CHARACTER_STRENGTH, GenerationRequest
from .store import Store


@dataclasses.dataclass(frozen=True)
class CharacterUse:
    """The character a generation was made with: a saved one (id, name) or one-off images
    (kept in the metadata as the SHA-256 of their pixels only)."""

    id: str | None
    name: str | None
    strength: float
    face: bool
    embeddings: ReferenceEmbeddings
    sha256: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "strength": self.strength,
            "face": self.face,
            "references": self.embeddings.count,
            **({"sha256": list(self.sha256)} if self.sha256 else {}),
        }


@dataclasses.dataclass(frozen=True)
class Resolved:
    conditioning: Conditioning | None = None
    character: CharacterUse | None = None
    style_sha256: str | None = None  # the style image's pixels, not the image

    def params(self) -> dict[str, Any]:
        """What goes into each image's parameters (and so its metadata)."""
        conditioning = self.conditioning
        style = conditioning is not None and conditioning.style is not None
        return {
            "character": self.character.params() if self.character else None,
            "style_reference": {
                "strength": conditioning.style_strength,
                "sha256": self.style_sha256,
            }
            if style
            else None,
        }


def uses_references(request: GenerationRequest) -> bool:
    return bool(request.style_image is not None or request.character or request.references)


def find_character(store: Store, user_id: str, key: str) -> dict[str, Any]:
    """The user's character with this id, or else this name (ids are never valid names)."""
    for row in store.list_characters(user_id):
        if key in (row["id"], row["name"]):
            return store.get_character(user_id, row["id"])
    raise NotFoundError(f"character: you have no character named {key!r}.")


def saved_embeddings(
    store: Store, loaded: LoadedModel, user_id: str, row: dict
) -> ReferenceEmbeddings:
    """The character's embeddings for this model's encoder: cached, or computed and cached."""
    blob = row.get("embeddings")
    if blob:
        cached = adapters.embeddings_from_bytes(bytes(blob))
        if adapters.embeddings_match(loaded, cached):
            return cached
    paths = list(row["reference_paths"] or [])
    embeddings = adapters.embed_images(loaded, paths)
    store.cache_character_embeddings(
        user_id, row["id"], paths, adapters.embeddings_to_bytes(embeddings)
    )
    return embeddings


def _scorer(loaded: LoadedModel, hub_timeout: float) -> consistency.Scorer:
    """The shared scoring encoder; a tiny model's is built beside it in the models folder."""
    folder = Path(getattr(loaded.pipe, "name_or_path", "") or ".").parent
    return consistency.scorer_for(loaded.preset, folder, hub_timeout)


def consistency_score(
    loaded: LoadedModel, picture: Any, character: CharacterUse, hub_timeout: float
) -> float:
    """How much ``picture`` looks like the character's references, the same way for every
    family: the adapters' encoder in place for SD, the shared scorer otherwise."""
    if loaded.preset.takes_references:
        return _scorer(loaded, hub_timeout).score(picture, character.embeddings.image_embeds)
    return adapters.consistency_score(loaded, picture, character.embeddings)


def _native(
    store: Store | None,
    loaded: LoadedModel,
    request: GenerationRequest,
    user_id: str,
    hub_timeout: float,
) -> Resolved:
    """A character for a model that reads reference pictures itself: the pictures go to the
    pipeline (at most as many as it reads), their scoring embeddings to the consistency score."""
    preset = loaded.preset
    if request.style_image is not None:
        raise ValidationError(
            f"style_image: {preset.name} has no IP-Adapter for style references; give the "
            "style picture among the references instead."
        )
    if request.character:
        row = find_character(store, user_id, request.character)
        pictures = [load_image(path, "character") for path in row["reference_paths"] or []]
    else:
        row, pictures = None, adapters.check_references(request.references)
    used = tuple(pictures[: preset.references])
    scorer = _scorer(loaded, hub_timeout)
    embeddings = adapters.ReferenceEmbeddings(scorer.embed(used), None, scorer.id)
    one_off = pictures if row is None else None
    character = character_use(request, row, one_off, request.character_face, embeddings)
    return Resolved(Conditioning(images=used), character)


def character_use(
    request: GenerationRequest,
    row: dict | None,
    one_off: list | None,
    face: bool,
    embeddings: ReferenceEmbeddings,
) -> CharacterUse:
    """The character a generation uses: the saved ``row`` or the ``one_off`` pictures, at the
    request's strength, else the saved character's, else the default."""
    strength = request.character_strength
    if strength is None:
        strength = (row or {}).get("strength")
    return CharacterUse(
        id=row["id"] if row else None,
        name=row["name"] if row else None,
        strength=DEFAULT_CHARACTER_STRENGTH if strength is None else float(strength),
        face=face,
        embeddings=embeddings,
        sha256=tuple(pixel_digest(image) for image in one_off or ()),
    )


def resolve(
    store: Store | None,
    loaded: LoadedModel,
    request: GenerationRequest,
    user_id: str,
    hub_timeout: float,
) -> Resolved:
    """Load the adapters (once per model) and embed what the request brings.

    ``store`` is needed only for a saved character. Images are read and checked before any
    adapter loads, so a bad upload fails fast.
    """
    if not uses_references(request):
        return Resolved()
    preset = loaded.preset
    if preset.takes_references and not zerogpu.enabled():
        return _native(store, loaded, request, user_id, hub_timeout)
    if zerogpu.enabled():
        raise ValidationError(
            "Style references and characters are not available on this ZeroGPU Space yet: "
            "their image encoder would run outside the borrowed GPU. Generate without them, "
            "or run GemPix on a GPU of its own."
        )
    style_image = None
    if request.style_image is not None:
        style_image = load_image(request.style_image, "style_image")
    one_off = adapters.check_references(request.references) if request.references else None
    row = find_character(store, user_id, request.character) if request.character else None
    wants_character = row is not None or one_off is not None
    loaded_face = loaded.adapters.face if loaded.adapters is not None else False
    face = request.character_face if wants_character else loaded_face  # style only: no reload
    adapters.ensure_adapters(loaded, adapters.KINDS, face=face, hub_timeout=hub_timeout)
    style = adapters.embed_images(loaded, [style_image]) if style_image is not None else None
    character = None
    if wants_character:
        if row is not None:
            embeddings = saved_embeddings(store, loaded, user_id, row)
        else:
            embeddings = adapters.embed_images(loaded, one_off)
        character = character_use(request, row, one_off, face, embeddings)
    conditioning = Conditioning(
        style=style,
        style_strength=float(request.style_strength),
        character=character.embeddings if character else None,
        character_strength=character.strength if character else 0.0,
    )
    style_sha256 = pixel_digest(style_image) if style_image is not None else None
    return Resolved(conditioning, character, style_sha256)
