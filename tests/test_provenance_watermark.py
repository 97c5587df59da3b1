"""The invisible watermark: survives JPEG, resizing and cropping; never found where absent."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gempix.provenance import GEMPIX_IDENTIFIER, Provenance, detect, embed, payload
from gempix.provenance.samples import COPIES, photograph, samples, texture

IDENTIFIER = 0xC0FFEE12


ATTACKS = {name: COPIES[name] for name in ("jpeg75", "resize50", "crop10", "none")}
PICTURES = {
    "cheetah-512": lambda: photograph(0, 512),
    "tower-512": lambda: photograph(2, 512),
    "groot-1024": lambda: photograph(1, 1024),
    "texture-768": lambda: texture(3, 768),
}


@pytest.fixture(scope="module", params=PICTURES)
def marked(request):
    original = PICTURES[request.param]()
    return original, embed(original, IDENTIFIER)


@pytest.mark.parametrize("attack", ATTACKS)
def test_watermark_survives(marked, attack):
    _, picture = marked
    found = detect(ATTACKS[attack](picture))
    assert found.found and found.identifier == IDENTIFIER, found


def test_watermark_is_faint(marked):
    original, picture = marked
    before = np.asarray(original, np.float64)
    after = np.asarray(picture, np.float64)
    assert picture.size == original.size and picture.mode == original.mode
    assert np.abs(after - before).max() <= 6
    psnr = 10 * np.log10(255**2 / np.mean((after - before) ** 2))
    assert psnr > 38


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_false_positive_on_unmarked_images(attack):
    scores = []
    for name, picture in samples(512) + [("flat", Image.new("RGB", (512, 512), (90, 140, 200)))]:
        found = detect(ATTACKS[attack](picture))
        assert not found.found and found.identifier is None, name
        scores.append(found.score)
    assert max(scores) < 6.5  # the sync peak alone stays under the threshold too


def test_other_identifiers_and_modes_round_trip():
    rgba = photograph(3, 512).convert("RGBA")
    rgba.putalpha(200)
    marked = embed(rgba, 0)
    assert marked.mode == "RGBA" and np.all(np.asarray(marked)[..., 3] == 200)
    assert detect(marked).identifier == 0
    grey = embed(photograph(4, 512).convert("L"), 0xFFFFFFFF)
    assert grey.mode == "L" and detect(grey).identifier == 0xFFFFFFFF


def test_the_service_marks_every_image_with_the_one_gempix_identifier(tmp_path):
    marked = Provenance.from_paths(tmp_path).watermark(photograph(1, 512))
    assert detect(marked).identifier == GEMPIX_IDENTIFIER == int.from_bytes(b"GPX1", "big")


@pytest.mark.slow
def test_marking_an_upscale_again_with_the_source_identifier_keeps_it():
    """A 2x upscale of a 1024 px image lays the old mark exactly on the new tile grid; the
    service marks every image with the same identifier (gempix/provenance/stamp.py)."""
    upscaled = embed(photograph(1, 1024), IDENTIFIER).resize((2048, 2048), Image.LANCZOS)
    found = detect(embed(upscaled, IDENTIFIER))
    assert found.found and found.identifier == IDENTIFIER


def test_small_and_degenerate_images_do_not_break_detection():
    for size in [(1, 1), (16, 16), (64, 64), (300, 20)]:
        picture = embed(Image.new("RGB", size, "white"), 7)
        assert picture.size == size
        assert not detect(picture).found


def test_identifier_is_checked():
    with pytest.raises(ValueError, match="outside 0..4294967295"):
        embed(photograph(0, 64), 1 << 32)
    with pytest.raises(TypeError, match="expected an int"):
        embed(photograph(0, 64), "7")  # type: ignore[arg-type]


def test_message_code_corrects_noise_and_rejects_random_words():
    coded = payload.encode(IDENTIFIER).astype(np.float64) * 2 - 1
    rng = np.random.default_rng(0)
    flipped = coded.copy()
    flipped[rng.choice(coded.size, 12, replace=False)] *= -1  # 12 hard errors of 192
    assert payload.decode(flipped) == IDENTIFIER
    assert payload.decode(coded + rng.normal(0, 0.9, coded.size)) == IDENTIFIER
    assert all(payload.decode(rng.normal(0, 1, coded.size)) is None for _ in range(200))
