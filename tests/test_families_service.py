"""The current families as presets, through GemPix's normal paths: the CLI, the Studio,
batching, sizes, upscaling, metadata, the catalogue, ``auto`` and the memory advisor.

Each tiny family is built once per session (``family_folders``) and loaded once
(``family_models``); images are 64 px (80x48 at 16:9) with 2 steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPVisionModelWithProjection

from gempix.engine import consistency, tiny_adapters
from gempix.engine.calls import call_kwargs
from gempix.engine.memory import GiB, advice, check_loadable
from gempix.engine.models import auto_pick
from gempix.engine.pipeline import task_pipeline
from gempix.engine.presets import PRESETS, can_edit, takes_references
from gempix.errors import ModelUnavailableError, ValidationError
from gempix.params import GenerationRequest
from gempix.privacy.identity import LOCAL_USER

TINY = ("tiny-flux2-klein", "tiny-z-image", "tiny-qwen-image-edit")


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("model", TINY)
def test_generate_through_the_cli_offline_same_seed_same_pixels(
    cli, tmp_path, family_studio, model
):
    """``gempix generate --model <tiny family>`` offline; the same seed drawn again (by the
    session's loaded copy, to load each model once) gives the same pixels."""
    studio = family_studio(model)  # the session's build, copied into this data dir
    code, out, err = cli(
        "generate", "a red fox", "-m", model, "--seed", 11, "-o", tmp_path / "out",
        "--data-dir", studio.settings.data_dir,
    )  # fmt: skip
    assert code == 0, err
    assert "seed=11  64x64" in out
    path = out.split()[0]
    again = studio.generate(GenerationRequest(prompt="a red fox", seed=11)).images[0]
    assert np.array_equal(pixels(path), pixels(again.path)), "same seed, other pixels"
    meta = json.loads(Image.open(path).text["gempix"])
    assert meta["model"] == model and meta["seed"] == 11 and meta["steps"] == 2


@pytest.mark.parametrize("model", TINY)
def test_aspect_upscale_and_batches(family_studio, model):
    studio = family_studio(model)
    result = studio.generate(
        GenerationRequest(prompt="a fox", seed=3, aspect="16:9", resolution="2k")
    )
    first = result.images[0]
    # 64x64 native pixels at 16:9 in multiples of 16, then upscaled to 2k's 2560x1440
    assert (first.params["base_width"], first.params["base_height"]) == (80, 48)
    assert Image.open(first.path).size == (2560, 1440) and first.params["upscaled"]
    if PRESETS[model].needs_image:
        return  # an edit model renders queued requests one by one (engine/batching.py)
    # Requests queued together share one call; each image still matches its own render.
    alone = pixels(studio.generate(GenerationRequest(prompt="a fox", seed=4)).images[0].path)
    together = studio.render_many(
        [GenerationRequest(prompt="a fox", seed=4), GenerationRequest(prompt="a cat", seed=9)]
    )
    batched = pixels(together[0].images[0].path).astype(int)
    assert np.abs(batched - alone).max() <= 2, "a batched image differs from its own render"


def test_negative_prompt_img2img_and_detail_are_refused_by_name(family_studio):
    klein = family_studio("tiny-flux2-klein")
    with pytest.raises(ValidationError, match="negative_prompt: tiny-flux2-klein reads no"):
        klein.generate(GenerationRequest(prompt="a fox", negative_prompt="blurry"))
    with pytest.raises(ValidationError, match="init_image: tiny-flux2-klein has no image-to"):
        klein.generate(GenerationRequest(prompt="a fox", init_image=Image.new("RGB", (64, 64))))
    with pytest.raises(ValidationError, match="upscaler: the detail pass"):
        klein.generate(GenerationRequest(prompt="a fox", resolution="2k", upscaler="detail"))


def test_each_family_gets_its_own_call_arguments():
    """What reaches each pipeline: klein no negative prompt, Qwen its true CFG (with " " for
    an empty negative prompt, as its model card does) and a blank canvas to edit."""
    common = dict(steps=2, width=64, height=48, generator=None)
    klein = call_kwargs(PRESETS["flux2-klein"], prompt="a", negative_prompt=None, guidance=1.0,
                        images=["ref"], **common)  # fmt: skip
    assert "negative_prompt" not in klein and klein["image"] == ["ref"]
    qwen = call_kwargs(PRESETS["qwen-image-edit"], prompt="a", negative_prompt="", guidance=4.0,
                       **common)  # fmt: skip
    assert qwen["true_cfg_scale"] == 4.0 and qwen["negative_prompt"] == " "
    assert "guidance_scale" not in qwen and qwen["image"][0].size == (64, 48)
    zimage = call_kwargs(PRESETS["z-image-turbo"], prompt="a", negative_prompt="blur",
                         guidance=0.0, **common)  # fmt: skip
    assert zimage["negative_prompt"] == "blur" and "image" not in zimage


def test_catalogue_lists_every_preset_with_its_facts(studio):
    infos = {info.name: info for info in studio.catalogue()}
    assert set(infos) == set(PRESETS)
    klein, qwen, zimage = infos["flux2-klein"], infos["qwen-image-edit"], infos["z-image-turbo"]
    assert klein.source == "black-forest-labs/FLUX.2-klein-4B" and klein.license == "Apache-2.0"
    assert (klein.can_edit, klein.references, klein.negative_prompt) == (True, 4, False)
    assert (qwen.can_edit, qwen.references, zimage.can_edit) == (True, 3, False)
    assert {klein.previews, qwen.previews, zimage.previews} == {"none"}
    assert infos["sd-turbo"].previews == "madebyollin/taesd"
    assert qwen.parameters > 28e9 and qwen.memory_gib["high"] > 48 > qwen.memory_gib["low"]
    assert infos["tiny-flux2-klein"].source == "built locally"


def test_advisor_says_the_edit_model_needs_offload_with_numbers():
    qwen = PRESETS["qwen-image-edit"]
    line = advice(qwen, "cuda", 24 * GiB)
    assert "needs about high 58.0 GiB, balanced 40.1 GiB, low 2.5 GiB; 24.0 GiB free" in line
    assert "auto picks low (one layer at a time" in line
    assert "auto picks high" in advice(qwen, "cuda", 80 * GiB)
    assert "does not fit" in advice(qwen, "cuda", 1 * GiB)
    with pytest.raises(ModelUnavailableError, match=r"58.0 GiB .* Use --memory low"):
        check_loadable(qwen, "high", "cuda", 24 * GiB)
    assert check_loadable(qwen, "auto", "cuda", 24 * GiB) == "low"


def test_the_engine_api_for_editing(family_models):
    """What the edit feature builds on: which presets edit or read references, and a family's
    task pipeline over the loaded weights (no second copy)."""
    assert can_edit("flux2-klein") and can_edit("qwen-image-edit") and not can_edit("sdxl")
    assert takes_references("tiny-flux2-klein") and not takes_references("z-image-turbo")
    loaded = family_models("tiny-flux2-klein").get()
    inpaint = task_pipeline(loaded, "inpaint")
    assert type(inpaint).__name__ == "Flux2KleinInpaintPipeline"
    assert inpaint.transformer is loaded.pipe.transformer
    assert task_pipeline(loaded, "inpaint") is inpaint
    assert task_pipeline(loaded, "text2image") is loaded.pipe
    with pytest.raises(ValidationError, match="task for tiny-flux2-klein must be one of"):
        task_pipeline(loaded, "img2img")


def test_auto_picks_from_device_and_free_memory_and_says_why():
    assert auto_pick("cpu").name == "sd-turbo" and "cpu" in auto_pick("cpu").reason
    big = auto_pick("cuda", 80 * GiB)
    assert big.name == "flux2-klein" and "80.0 GiB free" in big.reason
    assert auto_pick("cuda", 16 * GiB).name == "sdxl-turbo"
    assert auto_pick("cuda", 3 * GiB).name == "sd-turbo"


@pytest.mark.parametrize("model", ["tiny-flux2-klein", "tiny-qwen-image-edit"])
def test_a_saved_character_steers_the_output_and_is_scored(family_studio, tiny_folder, model):
    """The character's saved pictures go to the model as its own reference images, and the
    score comes from the one scoring encoder every family shares."""
    studio = family_studio(model)
    rng = np.random.default_rng(1)
    faces = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in "a"]
    studio.characters.create(LOCAL_USER, "Mira", faces, True)
    plain = studio.generate(GenerationRequest(prompt="a portrait", seed=7)).images[0]
    used = studio.generate(GenerationRequest(prompt="a portrait", seed=7, character="Mira"))
    image = used.images[0]
    assert (pixels(plain.path) != pixels(image.path)).mean() > 0.2, "the character did nothing"
    assert plain.params.get("consistency") is None
    assert -1.0 <= image.params["consistency"] <= 1.0
    assert image.params["character"]["name"] == "Mira"
    assert image.params["character"]["references"] == 1
    # the same way for every family: the shared tiny scorer gives the same number again, and
    # it is the tiny SD model's adapter encoder (same weights), so scores compare across models
    scorer = consistency.scorer_for(PRESETS[model], studio.settings.models_dir)
    again = scorer.score(Image.open(image.path), faces)
    # (the file carries the invisible watermark, added after scoring: docs/provenance.md)
    assert again == pytest.approx(image.params["consistency"], abs=1e-2)
    sd_encoder = CLIPVisionModelWithProjection.from_pretrained(
        tiny_folder / tiny_adapters.FOLDER / tiny_adapters.ENCODER_FOLDER
    )
    assert scorer.id == consistency.encoder_fingerprint(sd_encoder)


def test_a_model_without_references_or_adapters_refuses_a_character(family_studio):
    studio = family_studio("tiny-z-image")
    with pytest.raises(ValidationError, match="flux2-klein / qwen-image-edit, which read"):
        studio.generate(GenerationRequest(prompt="a fox", references=(Image.new("RGB", (8, 8)),)))


def test_previews_are_none_for_a_family_and_the_image_still_comes(family_studio):
    previews = []
    result = family_studio("tiny-z-image").generate(
        GenerationRequest(prompt="a fox", seed=2), on_preview=lambda *shown: previews.append(shown)
    )
    assert previews == [] and Image.open(result.images[0].path).size == (64, 64)
