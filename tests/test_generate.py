"""Generation through the service: determinism, sizes, image-to-image, threads."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from gempix.metadata import read_params
from gempix.params import GenerationRequest, request_from_params


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_same_seed_gives_identical_pixels(shared_studio, studio):
    request = GenerationRequest("a lighthouse at dawn", seed=42)
    first = shared_studio.generate(request).images[0]
    second = studio.generate(request).images[0]  # a fresh process-like studio
    assert first.path != second.path
    assert np.array_equal(pixels(first.path), pixels(second.path))


def test_different_seeds_differ(shared_studio):
    a = shared_studio.generate(GenerationRequest("a fox", seed=1)).images[0]
    b = shared_studio.generate(GenerationRequest("a fox", seed=2)).images[0]
    assert not np.array_equal(pixels(a.path), pixels(b.path))


def test_random_seed_is_reported_and_reproduces(shared_studio):
    first = shared_studio.generate(GenerationRequest("a fox")).images[0]
    again = shared_studio.generate(GenerationRequest("a fox", seed=first.seed)).images[0]
    assert np.array_equal(pixels(first.path), pixels(again.path))


def test_batch_image_regenerates_alone_from_its_metadata(shared_studio):
    batch = shared_studio.generate(GenerationRequest("three cats", seed=7, num_images=3))
    assert [image.seed for image in batch.images] == [7, 8, 9]
    third = batch.images[2]
    alone = shared_studio.generate(request_from_params(read_params(third.path))).images[0]
    difference = np.abs(pixels(third.path) - pixels(alone.path)).max()
    assert difference <= 2, f"Batched output differs from single by {difference} levels"


def test_aspect_and_4k_give_exact_target_size(shared_studio):
    result = shared_studio.generate(
        GenerationRequest("a city", aspect="16:9", resolution="4k", seed=1)
    )
    image = result.images[0]
    assert (image.width, image.height) == (3840, 2160)
    assert Image.open(image.path).size == (3840, 2160)
    assert image.params["upscaled"] and image.params["upscaler"] == "esrgan"
    assert (image.params["base_width"], image.params["base_height"]) == (88, 48)


@pytest.mark.parametrize("aspect,size", [("9:16", (48, 88)), ("1:1", (64, 64)), ("21:9", (96, 40))])
def test_native_aspect_keeps_model_area(shared_studio, aspect, size):
    image = shared_studio.generate(GenerationRequest("x", aspect=aspect, seed=1)).images[0]
    assert (image.width, image.height) == size


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "init",
    [
        _encoded(Image.new("RGB", (100, 80), "red"), "PNG"),
        _encoded(Image.new("CMYK", (64, 64), (0, 255, 0, 0)), "JPEG"),
        _encoded(Image.new("RGBA", (64, 64), (0, 0, 255, 128)), "PNG"),
        _encoded(Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)), "PNG"),
        _encoded(Image.new("P", (64, 64)), "GIF"),
    ],
    ids=["rgb", "cmyk", "alpha", "16bit", "palette"],
)
def test_image_to_image_accepts_any_mode(shared_studio, init):
    result = shared_studio.generate(
        GenerationRequest("a boat", init_image=init, strength=0.5, seed=3)
    )
    image = result.images[0]
    assert image.params["img2img"] is True and image.params["strength"] == 0.5
    assert Image.open(image.path).mode == "RGB"


def test_image_to_image_depends_on_the_init_image(shared_studio):
    red = _encoded(Image.new("RGB", (64, 64), "red"), "PNG")
    blue = _encoded(Image.new("RGB", (64, 64), "blue"), "PNG")
    a = shared_studio.generate(GenerationRequest("x", init_image=red, strength=0.5, seed=1))
    b = shared_studio.generate(GenerationRequest("x", init_image=blue, strength=0.5, seed=1))
    assert not np.array_equal(pixels(a.images[0].path), pixels(b.images[0].path))


def test_long_prompt_warns_with_what_was_dropped(shared_studio):
    prompt = "a" * 70 + " tail-words-beyond-the-limit"
    result = shared_studio.generate(GenerationRequest(prompt, seed=1))
    assert len(result.warnings) == 1
    assert "this model reads 77" in result.warnings[0]
    assert "limit" in result.warnings[0].split("Ignored:")[1]


def test_progress_reports_every_step(shared_studio):
    seen = []
    shared_studio.generate(
        GenerationRequest("x", seed=1, steps=3),
        progress=lambda done, total, stage: seen.append((done, total, stage)),
    )
    assert seen == [(1, 3, "denoise"), (2, 3, "denoise"), (3, 3, "denoise")]


def test_concurrent_generations_match_serial(shared_studio):
    seeds = [11, 12, 13, 14]
    serial = {
        seed: pixels(shared_studio.generate(GenerationRequest("x", seed=seed)).images[0].path)
        for seed in seeds
    }
    results, errors = {}, []

    def work(seed):
        try:
            path = shared_studio.generate(GenerationRequest("x", seed=seed)).images[0].path
            results[seed] = pixels(path)
        except Exception as error:  # surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in seeds * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert all(np.array_equal(results[seed], serial[seed]) for seed in seeds)


def test_styles_wrap_the_prompt_and_are_recorded(shared_studio):
    request = GenerationRequest("a fox", styles=("watercolor",), seed=1, width=64, height=64)
    image = shared_studio.generate(request).images[0]
    assert image.params["styles"] == ["watercolor"]
    assert image.params["prompt"].startswith("watercolor painting of a fox")
    assert image.params["negative_prompt"]  # the style's negative


def test_unknown_style_is_a_validation_error(shared_studio):
    from gempix.errors import ValidationError

    with pytest.raises(ValidationError, match="Did you mean: cinematic"):
        shared_studio.generate(GenerationRequest("a fox", styles=("cinematc",)))


def test_negative_warning_only_for_the_users_own_negative(shared_studio):
    styled = shared_studio.generate(GenerationRequest("a fox", styles=("watercolor",), seed=1))
    assert not any("has no effect" in warning for warning in styled.warnings)
    own = shared_studio.generate(GenerationRequest("a fox", negative_prompt="blur", seed=1))
    assert any("negative prompt has no effect" in warning for warning in own.warnings)
