"""What a GemPix C2PA manifest says, built from plain facts about one image.

Every manifest names its claim generator ("GemPix <version>"), the model preset and its
license (in an ``org.gempix.generation`` assertion), the prompt only when the operator allows
prompts in metadata, and a ``c2pa.training-mining`` assertion that follows the user's
training consent at the time: ``notAllowed`` for everything unless they opted in, then
``constrained`` to training by the operator who made the image (the consent covers GemPix,
not every crawler). A new image is CREATE with the IPTC digital source type
``trainedAlgorithmicMedia``; an edit, upscale or image-to-image result is EDIT with its
source as the ``parentOf`` ingredient, so the chain of an image can be read back; pictures a
model was shown (references, masks) are ``inputTo`` ingredients.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import __version__
from ..metadata import AI_SOURCE_TYPE

GEMPIX_ASSERTION = "org.gempix.generation"
TRAINING_USES = (
    "c2pa.ai_generative_training",
    "c2pa.ai_inference",
    "c2pa.ai_training",
    "c2pa.data_mining",
)
CONSENTED_TRAINING = "Training by the GemPix operator that made this image, as the user consented."
EDIT_ACTIONS = ("c2pa.edited", "c2pa.resized", "c2pa.transcoded")


RELATIONSHIPS = ("parentOf", "componentOf", "inputTo")


@dataclasses.dataclass(frozen=True)
class Ingredient:
    """A picture an image was made from: its encoded bytes (their own C2PA manifest, if any,
    is kept in the chain), a title for people reading the chain, and how it was used.

    ``parentOf``: the image this one is an edit of (an upscale's or image-to-image's source;
    at most one). ``inputTo``: a picture a model was shown (a style or character reference, a
    mask). ``componentOf``: a picture composed into this one.
    """

    data: bytes
    title: str = "source image"
    relationship: str = "parentOf"

    def __post_init__(self):
        if self.relationship not in RELATIONSHIPS:
            raise ValueError(
                f"relationship: {self.relationship!r} is not one of {', '.join(RELATIONSHIPS)}"
            )


@dataclasses.dataclass(frozen=True)
class ManifestFacts:
    """Facts about one image, known to the caller; nothing here is looked up.

    A ``parentOf`` ingredient makes the manifest an EDIT; ``action`` then says what happened
    to it (``c2pa.edited`` for image-to-image and edits, ``c2pa.resized`` for upscales), and
    ``ai_edit`` whether a generative model did it. Without one it is a CREATE; other
    ingredients are listed either way.
    """

    model: str
    model_license: str = ""
    prompt: str = ""
    include_prompt: bool = False
    training_allowed: bool = False
    ingredients: tuple[Ingredient, ...] = ()
    action: str = "c2pa.edited"
    ai_edit: bool = True
    title: str = "GemPix image"
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.action not in EDIT_ACTIONS:
            raise ValueError(f"action: {self.action!r} is not one of {', '.join(EDIT_ACTIONS)}")
        if sum(item.relationship == "parentOf" for item in self.ingredients) > 1:
            raise ValueError("ingredients: an image has at most one parentOf ingredient")

    @property
    def is_edit(self) -> bool:
        return any(item.relationship == "parentOf" for item in self.ingredients)


def training_assertion(allowed: bool) -> dict[str, Any]:
    if allowed:
        entry = {"use": "constrained", "constraint_info": CONSENTED_TRAINING}
    else:
        entry = {"use": "notAllowed"}
    return {
        "label": "c2pa.training-mining",
        "data": {"entries": dict.fromkeys(TRAINING_USES, entry)},
    }


def generation_assertion(facts: ManifestFacts) -> dict[str, Any]:
    data: dict[str, Any] = {"model": facts.model, **facts.details}
    if facts.model_license:
        data["model_license"] = facts.model_license
    if facts.include_prompt and facts.prompt:
        data["prompt"] = facts.prompt
    return {"label": GEMPIX_ASSERTION, "data": data}


def manifest_definition(facts: ManifestFacts) -> dict[str, Any]:
    """The manifest definition c2pa's ``Builder`` takes (intent and parent are set there)."""
    return {
        "claim_generator_info": [{"name": "GemPix", "version": __version__}],
        "title": facts.title,
        "assertions": [training_assertion(facts.training_allowed), generation_assertion(facts)],
    }


def edit_action(facts: ManifestFacts) -> dict[str, Any]:
    action: dict[str, Any] = {"action": facts.action}
    if facts.ai_edit:
        action["digitalSourceType"] = AI_SOURCE_TYPE
    return action
