"""Live previews: the tiny TAESD built in code, one preview per step, offline failures."""

from __future__ import annotations

import shutil

import pytest
import torch

from gempix.engine import previews
from gempix.engine.models import LoadedModel, ModelManager
from gempix.engine.presets import PRESETS
from gempix.errors import ModelUnavailableError, ValidationError
from gempix.settings import Settings


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, tiny_folder):
    data = tmp_path_factory.mktemp("preview-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    return ModelManager(Settings.load({}, data_dir=str(data), model="tiny")).get()


@pytest.fixture(scope="module")
def decoder(loaded):
    return previews.PreviewDecoder(loaded)


def generate(loaded, callback, steps=3, batch=1, size=64):
    return loaded.pipe(
        ["a red fox"] * batch,
        num_inference_steps=steps,
        guidance_scale=0.0,
        width=size,
        height=size,
        generator=torch.Generator("cpu").manual_seed(5),
        callback_on_step_end=callback,
    ).images


def test_tiny_taesd_is_deterministic_and_matches_the_tiny_latents(tmp_path):
    first = previews.build_tiny_taesd(tmp_path / "a")
    second = previews.build_tiny_taesd(tmp_path / "b")
    weights = "diffusion_pytorch_model.safetensors"
    assert (first / weights).read_bytes() == (second / weights).read_bytes()

    from diffusers import AutoencoderTiny

    taesd = AutoencoderTiny.from_pretrained(first)
    assert taesd.config.latent_channels == 4
    assert sum(p.numel() for p in taesd.parameters()) < 50_000
    with torch.inference_mode():
        image = taesd.decode(torch.zeros(1, 4, 8, 8), return_dict=False)[0]
    assert image.shape == (1, 3, 64, 64)  # scale factor 8, like the tiny model's VAE


def test_previews_arrive_once_per_step_with_progress_chained(loaded, decoder):
    seen, progress = [], []

    def on_step_end(pipeline, step, timestep, kwargs):
        progress.append(step + 1)
        return kwargs

    def on_preview(step, total, image):
        seen.append((step, total, image.size, image.mode))

    callback = previews.chain(on_step_end, previews.preview_callback(decoder, on_preview))
    images = generate(loaded, callback, steps=3)
    assert len(images) == 1
    assert progress == [1, 2, 3]
    assert seen == [(1, 3, (64, 64), "RGB"), (2, 3, (64, 64), "RGB"), (3, 3, (64, 64), "RGB")]


def test_previews_every_n_steps_always_include_the_last(loaded, decoder):
    steps = []
    callback = previews.preview_callback(decoder, lambda s, t, i: steps.append(s), every=2)
    generate(loaded, callback, steps=3)
    assert steps == [2, 3]
    with pytest.raises(ValueError):
        previews.preview_callback(decoder, print, every=0)


def test_previews_do_not_change_the_image(loaded, decoder):
    import numpy as np

    plain = generate(loaded, None, steps=2)[0]
    with_previews = generate(loaded, previews.preview_callback(decoder, lambda *a: None), steps=2)[
        0
    ]
    assert np.array_equal(np.asarray(plain), np.asarray(with_previews))


def test_a_batch_previews_as_one_strip(loaded, decoder):
    sizes = []
    generate(
        loaded,
        previews.preview_callback(decoder, lambda s, t, i: sizes.append(i.size)),
        steps=1,
        batch=2,
    )
    assert sizes == [(128, 64)]


def test_previews_are_small_whatever_the_image_size(decoder):
    image = decoder.decode(torch.randn(1, 4, 128, 96))  # latents of a 1024x768 image
    assert max(image.size) <= previews.PREVIEW_SIZE and image.size == (192, 256)
    assert decoder.seconds and decoder.seconds[-1] > 0


def test_a_failing_decode_never_fails_the_generation(loaded):
    class Broken:
        seconds: list = []

        def decode(self, latents):
            raise RuntimeError("out of memory")

    calls = []
    images = generate(loaded, previews.preview_callback(Broken(), lambda *a: calls.append(a)))
    assert len(images) == 1 and calls == []


def test_decoder_is_built_once_per_pipeline(loaded):
    assert previews.decoder_for(loaded) is previews.decoder_for(loaded)


def test_real_models_fail_fast_and_clearly_offline(loaded, connections):
    # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME: taesdxl is not cached.
    sdxl = LoadedModel(PRESETS["sdxl-turbo"], loaded.pipe, "cpu", torch.float32)
    with pytest.raises(ModelUnavailableError) as caught:
        previews.PreviewDecoder(sdxl)
    assert connections == []  # offline: not even one attempt
    assert "madebyollin/taesdxl" in caught.value.message
    assert "hf download madebyollin/taesdxl" in caught.value.message


def test_models_without_a_tiny_decoder_say_so(loaded):
    class Transformer:  # a FLUX-like pipeline: no unet
        pass

    flux = LoadedModel(PRESETS["flux-schnell"], Transformer(), "cpu", torch.bfloat16)
    with pytest.raises(ValidationError, match="previews support SD and SDXL"):
        previews.PreviewDecoder(flux)


def test_studio_generate_sends_one_preview_per_step_after_its_progress(studio):
    from gempix.params import GenerationRequest

    events = []
    result = studio.generate(
        GenerationRequest("a red fox", seed=3, steps=3, num_images=2),
        progress=lambda done, total, stage: events.append(("progress", done, total)),
        on_preview=lambda step, total, image: events.append(("preview", step, total, image.size)),
    )
    assert len(result.images) == 2
    assert events == [
        event
        for step in (1, 2, 3)
        for event in (("progress", step, 3), ("preview", step, 3, (128, 64)))  # a 2-image strip
    ]


def test_without_a_preview_decoder_the_image_is_still_made(studio, monkeypatch):
    from gempix.engine import generate as engine_generate
    from gempix.params import GenerationRequest

    def unavailable(loaded):
        raise ModelUnavailableError("not downloaded, and offline")

    monkeypatch.setattr(engine_generate, "decoder_for", unavailable)
    shown = []
    result = studio.generate(
        GenerationRequest("a red fox", seed=3), on_preview=lambda *args: shown.append(args)
    )
    assert len(result.images) == 1 and shown == []


def test_a_failed_decoder_build_is_remembered(loaded, monkeypatch):
    attempts = []

    class Failing:
        def __init__(self, loaded, **options):
            attempts.append(1)
            raise ModelUnavailableError("offline")

    fake = LoadedModel(loaded.preset, torch.nn.Identity(), "cpu", torch.float32)
    monkeypatch.setattr(previews, "PreviewDecoder", Failing)
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            previews.decoder_for(fake)
    assert attempts == [1]
