"""Every rule of a generation request fails with one clear, named message, and nothing is made.

The rules that need no model fail when the request is built (``gempix.params``), the others
when the engine plans it; either way the same ValidationError reaches every front door."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gempix.errors import ValidationError
from gempix.params import GenerationRequest


def png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, "PNG")
    return buffer.getvalue()


def bomb() -> bytes:
    """A tiny file that claims 20000x20000 pixels (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    return buffer.getvalue()


CASES = [
    (dict(prompt=""), "prompt: must not be empty"),
    (dict(prompt="   \n\t"), "prompt: must not be empty"),
    (dict(prompt="x" * 2001), "prompt: 2,001 characters; the limit is 2,000"),
    (dict(prompt="a\x00b"), "prompt: contains a NUL"),
    (dict(prompt=123), "prompt: expected text, got int"),
    (dict(negative_prompt="n" * 5000), "negative_prompt: 5,000 characters"),
    (dict(steps=0), "steps: 0 is out of range; allowed 1 to 100"),
    (dict(steps=101), "steps: 101 is out of range"),
    (dict(steps="ten"), "steps: expected a whole number, got 'ten'"),
    (dict(steps=2.5), "steps: expected a whole number, got 2.5"),
    (dict(guidance=float("nan")), "guidance: must be a finite number"),
    (dict(guidance=float("inf")), "guidance: must be a finite number"),
    (dict(guidance=-1), "guidance: -1.0 is outside [0.0, 30.0]"),
    (dict(guidance="high"), "guidance: expected a number"),
    (dict(width=65, height=64), "width: 65 is not a multiple of 8, which this model needs"),
    (dict(width=64, height=10000), "height: 10000 is out of range; allowed 64 to 4096"),
    (dict(width=0, height=64), "width: 0 is out of range"),
    (dict(width=-64, height=64), "width: -64 is out of range"),
    (dict(width=64), "size: give both width and height"),
    (dict(width=64, height=64, aspect="1:1"), "not both"),
    (dict(width=64, height=64, resolution="4k"), "resolution: 2k/4k go with an aspect ratio"),
    (dict(aspect="5:4"), "aspect: '5:4' is not supported"),
    (dict(aspect="16/9"), "aspect: '16/9' is not supported"),
    (dict(resolution="8k"), "resolution: '8k' is not supported"),
    (dict(num_images=0), "num_images: 0 is out of range; allowed 1 to 8"),
    (dict(num_images=9), "num_images: 9 is out of range"),
    (dict(seed=-1), "seed: -1 is out of range"),
    (dict(seed=2**32), "seed: 4294967296 is out of range"),
    (dict(seed=True), "seed: expected a whole number"),
    (dict(upscaler="magic"), "upscaler: 'magic' is not supported; choose one of auto, lanczos"),
    (dict(styles=["a", "b", "c", "d", "e", "f"]), "styles: 6 given; at most 5"),
    (dict(references=[png()] * 5), "references: 5 given; at most 4"),
    (dict(character="Mira", references=[png()]), "give a saved character or references"),
    (dict(character_strength=2.5), "character_strength: 2.5 is outside [0.0, 2.0]"),
    (dict(character_face="yes"), "character_face: expected true or false, got 'yes'"),
    (dict(colour="red"), "colour: unknown field; allowed: prompt,"),
    (dict(init_image=png(), strength=0), "strength: 0.0 is outside (0.0, 1.0]"),
    (dict(init_image=png(), strength=1.5), "strength: 1.5 is outside (0.0, 1.0]"),
    (dict(init_image=png(), strength=float("nan")), "strength: must be a finite number"),
    (dict(init_image=png(), strength=0.3, steps=2), "steps x strength must be at least 1"),
    (dict(init_image=b"not an image at all"), "init_image: not a readable image"),
    (dict(init_image=png()[:60]), "init_image: the image file is truncated or corrupt"),
    (dict(init_image=b""), "init_image: the file is empty"),
    (dict(init_image="/no/such/file.png"), "init_image: no such file"),
    (dict(init_image=png((5000, 5000))), "init_image: 5000x5000 is too large"),
    (dict(init_image=bomb()), "init_image:"),
    (dict(init_image=b"\x89PNG" + b"\x00" * (26 * 1024 * 1024)), "the limit is 26,214,400"),
]


@pytest.mark.parametrize("fields,message", CASES, ids=[message[:40] for _, message in CASES])
def test_invalid_request_is_refused_clearly(shared_studio, fields, message):
    images_before = sorted(shared_studio.settings.images_dir.rglob("*.png"))
    with pytest.raises(ValidationError) as caught:
        shared_studio.generate(GenerationRequest(**{"prompt": "a valid prompt", **fields}))
    assert message in caught.value.message
    assert caught.value.status == 400
    assert sorted(shared_studio.settings.images_dir.rglob("*.png")) == images_before


def test_error_messages_never_echo_the_prompt(shared_studio):
    secret = "sentinel-" + "q" * 2000
    with pytest.raises(ValidationError) as caught:
        GenerationRequest(secret)
    assert "sentinel" not in caught.value.message
    with pytest.raises(ValidationError) as caught:
        GenerationRequest("x", steps=secret)
    assert "sentinel" in caught.value.message and "q" * 41 not in caught.value.message


def test_bomb_is_refused_before_decoding(shared_studio):
    """The 20000x20000 image must fail on its header, without allocating 400 MP."""
    with pytest.raises(ValidationError):
        shared_studio.generate(GenerationRequest("x", init_image=bomb()))


def test_request_type_is_checked(shared_studio):
    with pytest.raises(ValidationError, match="expected a GenerationRequest"):
        shared_studio.generate({"prompt": "x"})


def test_16_bit_init_is_scaled_not_clipped(shared_studio):
    from gempix.images import load_image

    grey = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    buffer = io.BytesIO()
    grey.save(buffer, "PNG")
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (128, 128, 128)
