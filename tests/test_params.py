"""The request model: its round trip through PNG metadata redoes every field that changes
pixels, and the pictures a request brought are kept as digests that must be matched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gempix.errors import ValidationError
from gempix.metadata import read_params
from gempix.params import GenerationRequest, request_from_params
from gempix.privacy.identity import LOCAL_USER


def noise(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


# Each field that changes pixels, set away from its default (with what it needs).
CHANGED = {
    "prompt": {"prompt": "a red fox in the snow"},
    "negative_prompt": {"negative_prompt": "blurry", "guidance": 2.0},
    "seed": {"seed": 4242},
    "steps": {"steps": 3},
    "guidance": {"guidance": 4.5},
    "width, height": {"width": 96, "height": 64},
    "aspect": {"aspect": "16:9"},
    "resolution, upscaler": {"aspect": "21:9", "resolution": "2k", "upscaler": "esrgan"},
    "styles": {"styles": ("watercolor", "film-noir")},
    "init_image, strength": {"init_image": noise(1, 64), "strength": 0.7},
    "style_image, style_strength": {"style_image": noise(2), "style_strength": 1.2},
    "references, character_strength, character_face": {
        "references": (noise(3), noise(4)),
        "character_strength": 1.1,
        "character_face": True,
    },
    "character": {"character": "Mira", "character_strength": 0.9},
}
PICTURES = ("init_image", "style_image", "references")


@pytest.fixture(scope="module")
def plain(shared_studio):
    """The image every changed field is compared with: all defaults."""
    return shared_studio.generate(GenerationRequest("a lighthouse", seed=7)).images[0]


@pytest.mark.parametrize("fields", CHANGED.values(), ids=list(CHANGED))
def test_every_field_that_changes_pixels_survives_the_round_trip(studio, plain, fields):
    if fields.get("character"):
        studio.characters.create(LOCAL_USER, "Mira", [noise(5), noise(6)], True)
    request = GenerationRequest(**{"prompt": "a lighthouse", "seed": 7, **fields})
    first = studio.generate(request).images[0]
    assert first.params != plain.params and (
        (first.width, first.height) != (plain.width, plain.height)
        or not np.array_equal(pixels(plain.path), pixels(first.path))
    ), "the field changed nothing: the round trip would prove nothing"
    pictures = {name: fields[name] for name in PICTURES if name in fields}
    again = studio.generate(request_from_params(read_params(first.path), pictures)).images[0]
    assert np.array_equal(pixels(first.path), pixels(again.path))


@pytest.mark.parametrize("field", PICTURES)
def test_a_picture_the_request_brought_must_be_given_again_and_be_the_same(studio, field):
    given = (noise(8),) if field == "references" else noise(8, 64)
    image = studio.generate(GenerationRequest("a fox", seed=1, **{field: given})).images[0]
    params = read_params(image.path)
    assert "noise" not in str(params) and len(str(params)) < 4000  # digests, not pictures
    with pytest.raises(ValidationError, match=f"{field}: the image was made with .* not kept"):
        request_from_params(params)
    other = (noise(9),) if field == "references" else noise(9, 64)
    with pytest.raises(ValidationError, match=f"{field}: the image you passed is not the one"):
        request_from_params(params, {field: other})
    png = studio.settings.data_dir / "same.png"  # the same picture, as a file this time
    (given[0] if field == "references" else given).save(png)
    again = request_from_params(params, {field: [png] if field == "references" else png})
    assert getattr(again, field)


def test_an_image_saved_without_its_prompt_says_it_cannot_be_redone(studio):
    params = {"seed": 1, "steps": 2, "guidance": 0.0, "base_width": 64, "base_height": 64}
    with pytest.raises(ValidationError, match="carries no prompt"):
        request_from_params(params)


def test_the_request_is_one_immutable_value_with_its_fields():
    request = GenerationRequest("a fox", seed=3, styles=["watercolor"])
    assert request.styles == ("watercolor",) and request.fields()["seed"] == 3
    assert GenerationRequest(**request.fields()) == request
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        request.seed = 4
