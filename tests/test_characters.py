"""Characters and style references through the service: what every front door gets.

The engine's own behaviour (scales, shapes, the adapters' file layout) is in test_adapters.py;
here: saved characters and their cached embeddings in the store, the consistency score stored and
written into the PNG, hostile input refused with nothing stored, the CLI.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from gempix.engine import adapters
from gempix.errors import NotFoundError, ValidationError
from gempix.metadata import read_params
from gempix.params import GenerationRequest, request_from_params
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import LOCAL_USER, create_user
from gempix.store import Store


def noise(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def pixels(result) -> np.ndarray:
    return np.asarray(Image.open(result.images[0].path), dtype=np.int16)


def ask(**fields) -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse at dawn", seed=11, **fields)


def create_mira(studio) -> str:
    return studio.characters.create(LOCAL_USER, "Mira", [noise(1), noise(2)], True)["id"]


@pytest.fixture
def mira(studio):
    """The local user's character "Mira" with two references."""
    return create_mira(studio)


class EncoderCalls:
    """Batch sizes of every image-encoder forward pass (2 references -> a batch of 2)."""

    def __init__(self, loaded):
        self.batches: list[int] = []
        self.handle = loaded.pipe.image_encoder.register_forward_hook(self.record)

    def record(self, module, args, kwargs_or_output, *rest):
        self.batches.append(int(args[0].shape[0]))

    def close(self):
        self.handle.remove()


def test_character_changes_pixels_and_strength_zero_does_not(fresh_studio):
    studio = fresh_studio
    mira = create_mira(studio)
    plain = studio.generate(ask())
    assert studio.model().adapters is None  # nothing loaded until a reference is used
    with_character = studio.generate(ask(character="Mira"))
    switched_off = studio.generate(ask(character=mira, character_strength=0))
    plain_again = studio.generate(ask())
    assert np.abs(pixels(plain) - pixels(with_character)).max() > 0
    assert np.array_equal(pixels(plain), pixels(switched_off))
    assert np.array_equal(pixels(plain), pixels(plain_again))  # adapters loaded, all at 0


def test_saved_character_embeddings_are_cached_in_the_store(studio, mira):
    assert studio.store.get_character(LOCAL_USER, mira)["embeddings"] is None
    studio.generate(ask(character="Mira"))  # loads the adapters, embeds, caches
    calls = EncoderCalls(studio.model())
    try:
        result = studio.generate(ask(character="Mira", num_images=2))
    finally:
        calls.close()
    # Only the two outputs were encoded (for their scores): never the two references.
    assert calls.batches == [1, 1]
    assert all(-1 <= image.params["consistency"] <= 1 for image in result.images)
    blob = studio.store.get_character(LOCAL_USER, mira)["embeddings"]
    stored = adapters.embeddings_from_bytes(bytes(blob))
    assert stored.count == 2 and adapters.embeddings_match(studio.model(), stored)


def test_embeddings_of_another_encoder_or_old_references_are_recomputed(studio, mira):
    studio.generate(ask(character="Mira"))
    loaded = studio.model()
    real = adapters.embed_images(loaded, [noise(9)])
    foreign = dataclasses.replace(real, encoder="another-encoder")
    studio.store.update_character(
        LOCAL_USER, mira, embeddings=adapters.embeddings_to_bytes(foreign)
    )
    calls = EncoderCalls(loaded)
    try:
        studio.generate(ask(character="Mira"))
    finally:
        calls.close()
    assert calls.batches == [2, 1]  # the references again, then the output's score
    blob = studio.store.get_character(LOCAL_USER, mira)["embeddings"]
    assert adapters.embeddings_match(loaded, adapters.embeddings_from_bytes(bytes(blob)))

    studio.characters.update(LOCAL_USER, mira, references=[noise(5)], rights_confirmed=True)
    assert studio.store.get_character(LOCAL_USER, mira)["embeddings"] is None
    result = studio.generate(ask(character="Mira"))
    assert result.images[0].params["character"]["references"] == 1


def test_cache_write_is_skipped_when_references_changed_meanwhile(studio, mira):
    row = studio.store.get_character(LOCAL_USER, mira)
    assert not studio.store.cache_character_embeddings(
        LOCAL_USER, mira, ["/some/older/reference.png"], b"stale"
    )
    assert studio.store.cache_character_embeddings(
        LOCAL_USER, mira, row["reference_paths"], b"fresh"
    )
    assert bytes(studio.store.get_character(LOCAL_USER, mira)["embeddings"]) == b"fresh"


def test_score_is_stored_written_to_the_png_and_reproducible(studio, mira, settings):
    result = studio.generate(ask(character="Mira", character_strength=1.2))
    image = result.images[0]
    score = image.params["consistency"]
    assert -1 <= score <= 1
    assert image.params["character"] == {
        "id": mira,
        "name": "Mira",
        "strength": 1.2,
        "face": False,
        "references": 2,
    }
    assert read_params(image.path)["consistency"] == score
    again = studio.generate(request_from_params(read_params(image.path)))
    assert np.array_equal(pixels(result), pixels(again))
    assert again.images[0].params["consistency"] == score
    studio.close()
    with Store.open(settings) as store:  # reopened: what reached the files
        row = store.get_generation(LOCAL_USER, image.id)
        usage = store.usage_events()
    rows = [(row["character_id"], row["consistency"])]
    events = int((usage["used_character"] & ~usage["used_style_ref"]).sum())
    assert rows == [(mira, score)]
    assert events == 2


def test_style_reference_and_one_off_references_together(studio):
    plain = studio.generate(ask())
    style = studio.generate(ask(style_image=noise(3)))
    one_off = studio.generate(ask(references=(noise(4),)))
    both = studio.generate(ask(style_image=noise(3), references=(noise(4),)))
    images = [pixels(result) for result in (plain, style, one_off, both)]
    for index, first in enumerate(images):
        for second in images[index + 1 :]:
            assert np.abs(first - second).max() > 0
    params = both.images[0].params
    assert params["style_reference"]["strength"] == 0.8
    assert params["character"]["id"] is None and params["character"]["references"] == 1
    assert "consistency" in params and "consistency" not in style.images[0].params


def test_face_mode_swaps_only_the_character_weights(studio, mira):
    plus = studio.generate(ask(character="Mira"))
    loaded = studio.model()
    pipe, unet = loaded.pipe, loaded.pipe.unet
    face = studio.generate(ask(character="Mira", character_face=True))
    assert loaded.adapters.face and face.images[0].params["character"]["face"] is True
    assert np.abs(pixels(plus) - pixels(face)).max() > 0
    state = loaded.adapters
    studio.generate(ask(style_image=noise(3)))  # a style alone keeps what is loaded
    assert loaded.adapters is state
    again = studio.generate(request_from_params(read_params(face.images[0].path)))
    assert np.array_equal(pixels(face), pixels(again))
    assert studio.model() is loaded and loaded.pipe is pipe and loaded.pipe.unet is unet


def test_strength_comes_from_the_character_unless_given(studio):
    studio.characters.create(LOCAL_USER, "Bo", [noise(6)], True, strength=1.5)
    assert studio.generate(ask(character="Bo")).images[0].params["character"]["strength"] == 1.5
    given = studio.generate(ask(character="Bo", character_strength=0.3))
    assert given.images[0].params["character"]["strength"] == 0.3


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    noise(7, 64).save(buffer, format="PNG")
    return buffer.getvalue()[:300]


def huge_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        ({"references": tuple(noise(i) for i in range(5))}, ValidationError, "at most 4"),
        ({"references": (b"not an image",)}, ValidationError, "not a readable image"),
        ({"references": (truncated_png(),)}, ValidationError, "references[0]"),
        ({"style_image": huge_png()}, ValidationError, "style_image"),
        ({"character": "Nobody"}, NotFoundError, "no character named 'Nobody'"),
        ({"character": "Mira", "references": (noise(1),)}, ValidationError, "not both"),
        ({"character": 42}, ValidationError, "character"),
        ({"references": "a.png"}, ValidationError, "references"),
        ({"style_strength": 2.5}, ValidationError, "style_strength"),
        ({"character_strength": float("nan")}, ValidationError, "character_strength"),
        ({"style_strength": "0.5"}, ValidationError, "style_strength"),
        ({"character_face": "yes"}, ValidationError, "character_face"),
    ],
    ids=[
        "five-refs",
        "non-image",
        "truncated",
        "20000px",
        "unknown",
        "both-ways",
        "id-type",
        "refs-type",
        "strength-high",
        "strength-nan",
        "strength-text",
        "face-text",
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(studio, mira, settings, fields, error, words):
    with pytest.raises(error) as raised:
        studio.generate(ask(**fields))
    assert words in str(raised.value.message)
    assert studio.store.list_generations(LOCAL_USER) == []
    assert not list((settings.images_dir).rglob("*.png"))


def test_another_users_character_reads_as_not_found(studio, mira):
    _, stranger = create_user(studio)
    confirm_age(studio.store, stranger)
    for key in (mira, "Mira"):
        with pytest.raises(NotFoundError) as raised:
            studio.generate(ask(character=key), user_id=stranger)
        assert raised.value.message == f"character: you have no character named {key!r}."
    assert studio.store.list_generations(stranger) == []


def test_cli_characters_and_generate(settings, cli, tmp_path):
    reference = tmp_path / "front.png"
    noise(8).save(reference)
    data = ("--data-dir", str(settings.data_dir))

    def run(*args):
        return cli(*args, *data)

    code, _, err = run("characters", "create", "Kit", str(reference))
    assert code == 2 and "confirm that you have the rights" in err
    assert run("characters", "create", "Kit", str(reference), "--confirm-rights")[0] == 0
    code, out, _ = run("characters", "list")
    assert code == 0 and "Kit  references=1  strength=default" in out
    code, out, _ = run("generate", "a cat", "--character", "Kit", "--seed", "3", "-m", "tiny")
    line = out.strip().splitlines()[-1]
    assert code == 0 and "seed=3" in line and "consistency=" in line
    code, _, err = run("generate", "a cat", "--ref", str(reference), "--ref", "/etc/hostname")
    assert code == 2 and "references[1]" in err
    assert run("characters", "rename", "Kit", "Kat")[0] == 0
    assert run("characters", "delete", "Kit")[0] == 2
    assert run("characters", "delete", "Kat")[0] == 0
    with Store.open(settings) as store:
        assert store.list_characters(LOCAL_USER) == []
