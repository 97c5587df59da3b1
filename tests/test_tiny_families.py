"""The tiny model families: built offline in code, byte-identical on a rebuild, loaded with
``from_pretrained`` and generating through their real diffusers pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_tiny import tree_digest

from gempix.engine import families
from gempix.engine.families import FAMILIES, qwen_text
from gempix.errors import ValidationError

SIZE = 64
STEPS = 2


@pytest.fixture(scope="session")
def pipeline(family_folders):
    """``pipeline(name, task=None)``: the family's pipeline, loaded once per session."""
    loaded = {}

    def get(name, task=None):
        if (name, task) not in loaded:
            pipe = families.load_family(name, family_folders[name], task, local_files_only=True)
            pipe.set_progress_bar_config(disable=True)
            loaded[name, task] = pipe
        return loaded[name, task]

    return get


def picture(seed: int, size: int = SIZE) -> Image.Image:
    """A noise picture from a fixed seed: a stand-in for a user's reference photo."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


RED = Image.new("RGB", (SIZE, SIZE), (200, 20, 20))


def generate(pipe, seeds, prompt: str = "a red fox in the snow", **extra) -> list[np.ndarray]:
    """Images through GemPix's kind of call: keywords only, one CPU generator per image
    (seeded ``seeds[i]``), PIL out."""
    import torch

    seeds = [seeds] if isinstance(seeds, int) else seeds
    kwargs = dict(
        prompt=prompt,
        num_inference_steps=STEPS,
        num_images_per_prompt=len(seeds),
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
    )
    if "mask_image" not in extra:
        kwargs.update(height=SIZE, width=SIZE)
    kwargs.update(extra)
    return [np.asarray(image) for image in pipe(**kwargs).images]


def one(pipe, seed: int, prompt: str = "a red fox in the snow", **extra) -> np.ndarray:
    return generate(pipe, seed, prompt, **extra)[0]


def inputs(name: str) -> dict:
    """What a family needs besides the prompt: Qwen-Image-Edit always edits an input image."""
    return {"image": [RED]} if name == "qwen-image-edit" else {}


@pytest.mark.parametrize("name", FAMILIES)
def test_rebuild_is_byte_identical(tmp_path, family_folders, name):
    first = tree_digest(family_folders[name])
    again = tree_digest(families.build_tiny_family(name, tmp_path / name))
    weights = {path.split("/")[0] for path in first if path.endswith(".safetensors")}
    assert weights == {"transformer", "vae", "text_encoder"}
    assert first == again


def test_stale_or_other_family_folder_is_rebuilt(tmp_path, family_folders):
    import shutil

    folder = tmp_path / "klein"
    shutil.copytree(family_folders["flux2-klein"], folder)
    marker = folder / families.tiny_build.MARKER
    marker.write_text(json.dumps({"family": "z-image-turbo", "recipe": families.RECIPE_VERSION}))
    (folder / "transformer" / "config.json").write_text("{broken")
    families.build_tiny_flux2_klein(folder)
    assert tree_digest(folder) == tree_digest(family_folders["flux2-klein"])


@pytest.mark.parametrize("name", FAMILIES)
def test_tokenizer_is_written_locally_and_reads_any_text(family_folders, pipeline, name):
    files = {path.name for path in (family_folders[name] / "tokenizer").iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json"} <= files
    tokenizer = pipeline(name).tokenizer
    text = "Ünïcödé 猫 ✓ <b>&amp;"  # every byte has a token: nothing becomes unknown
    assert tokenizer.decode(tokenizer(text).input_ids) == text
    markup = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    assert (
        markup == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    ids = tokenizer(markup).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")  # one token, not 12 bytes
    assert tokenizer.convert_tokens_to_ids("<think>") in ids


@pytest.mark.parametrize("name", FAMILIES)
def test_loads_through_from_pretrained(family_folders, pipeline, name):
    pipe = pipeline(name)
    assert type(pipe).__name__ == next(iter(FAMILIES[name].PIPELINES.values()))
    assert pipe.name_or_path == str(family_folders[name])
    assert pipe.vae_scale_factor == 8  # size multiple 16, as in the full-size models


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("task", ["text2image", "edit", "img2img", "inpaint"])
def test_every_task_loads_from_the_same_folder(pipeline, name, task):
    if task not in FAMILIES[name].PIPELINES:
        with pytest.raises(ValidationError, match=f"task for {name} must be one of"):
            pipeline(name, task)
        return
    assert type(pipeline(name, task)).__name__ == FAMILIES[name].PIPELINES[task]


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_pixels_and_a_batch_image_regenerates_alone(pipeline, name):
    pipe = pipeline(name)
    first = one(pipe, 7, **inputs(name))
    assert first.shape == (SIZE, SIZE, 3)
    assert np.array_equal(first, one(pipe, 7, **inputs(name))), "same seed, other pixels"
    other = one(pipe, 8, **inputs(name))
    assert (first != other).mean() > 0.5, "the seed barely matters"
    batch = generate(pipe, [7, 8], **inputs(name))
    for got, alone in zip(batch, (first, other), strict=True):
        difference = np.abs(got.astype(int) - alone.astype(int)).max()
        assert difference <= 2, "a batch image differs from its single run"  # as SD's tiny


@pytest.mark.parametrize("name", ["flux2-klein", "z-image-turbo"])
def test_prompt_steers_the_output(pipeline, name):
    pipe = pipeline(name)
    assert (one(pipe, 7, "a red fox") != one(pipe, 7, "a blue whale")).mean() > 0.5


def test_klein_reference_images_steer_the_output(pipeline):
    pipe = pipeline("flux2-klein")
    plain = one(pipe, 7)
    red = one(pipe, 7, image=[RED])
    noise = one(pipe, 7, image=[picture(1)])
    both = one(pipe, 7, image=[RED, picture(1)])
    assert np.array_equal(red, one(pipe, 7, image=[RED])), "same reference, other pixels"
    for before, after in ((plain, red), (red, noise), (noise, both)):
        assert (before != after).mean() > 0.2, "a reference image barely changes the output"


def test_qwen_edit_input_images_steer_the_output(pipeline):
    pipe = pipeline("qwen-image-edit")
    red = one(pipe, 7, image=[RED])
    noise = one(pipe, 7, image=[picture(1)])
    three = one(pipe, 7, image=[RED, picture(1), picture(2)])
    assert (red != noise).mean() > 0.2, "the input image barely changes the output"
    assert (red != three).mean() > 0.2, "more input images barely change the output"


def test_qwen_processor_needs_no_torchvision_and_names_the_stock_class(family_folders, pipeline):
    folder = family_folders["qwen-image-edit"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["processor"] == ["transformers", "Qwen2VLProcessor"]
    saved = json.loads((folder / "processor" / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2VLProcessor"
    processor = pipeline("qwen-image-edit").processor
    assert isinstance(processor, qwen_text.processor_class())
    batch = processor(
        text=["Picture 1: <|vision_start|><|image_pad|><|vision_end|>a fox"],
        images=[picture(3, size=112)],
        return_tensors="pt",
    )
    # 112 px -> 8 x 8 patches of 14 -> merged 2 x 2 -> 16 image tokens in the text
    assert batch["image_grid_thw"].tolist() == [[1, 8, 8]]
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (batch["input_ids"][0] == image_token).sum().item() == 16


def test_qwen_processor_loads_a_published_style_folder(tmp_path):
    """The published processor/ folders have no processor_config.json: a tokenizer and the
    Qwen2.5-VL preprocessor_config.json (values of Qwen/Qwen2.5-VL-7B-Instruct's)."""
    qwen_text.build_tokenizer().save_pretrained(tmp_path)
    published = {
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(published))
    processor = qwen_text.load_processor(tmp_path)
    batch = processor(text=["<|image_pad|>"], images=[picture(4, size=392)], return_tensors="pt")
    assert batch["image_grid_thw"].tolist() == [[1, 28, 28]]  # 392 px / 14, within 12.8 MP


def mask_square(size: int) -> Image.Image:
    """White (repaint) square in the middle half, black (keep) around it."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return Image.fromarray(mask)


@pytest.mark.parametrize("name", FAMILIES)
def test_inpaint_keeps_pixels_outside_the_mask_only_after_the_overlay(pipeline, name):
    """The pipelines blend in latent space, so the VAE round trip still changes the kept area:
    diffusers' ``apply_overlay`` (used with ``padding_mask_crop``) pastes the original back."""
    pipe = pipeline(name, "inpaint")
    source, mask = picture(5), mask_square(SIZE)
    result = Image.fromarray(one(pipe, 7, image=source, mask_image=mask, strength=1.0))
    if name == "qwen-image-edit":  # ignores height/width: about 1 megapixel, source's aspect
        assert result.size == (1024, 1024)
        source, mask = source.resize(result.size), mask.resize(result.size, Image.NEAREST)
    else:
        assert result.size == (SIZE, SIZE)
    keep = np.asarray(mask) == 0
    original, generated = np.asarray(source), np.asarray(result)
    assert not np.array_equal(generated[keep], original[keep]), "the pipeline now keeps pixels"
    blended = np.asarray(pipe.image_processor.apply_overlay(mask, source, result))
    assert np.array_equal(blended[keep], original[keep])
    assert np.array_equal(blended[~keep], generated[~keep])


@pytest.mark.parametrize("name", FAMILIES)
def test_full_size_architecture_matches_the_published_checkpoints(name):
    """Built on the meta device (no memory) from the transcribed configs: a wrong layer count
    or width moves a component's parameter count far beyond 1 %."""
    parts = families.full_size_components(name)
    assert set(parts) == set(FAMILIES[name].PUBLISHED)
    for part, module in parts.items():
        assert all(parameter.is_meta for parameter in module.parameters())
        counted = sum(parameter.numel() for parameter in module.parameters())
        for published, source in FAMILIES[name].PUBLISHED[part]:
            assert abs(counted / published - 1) <= 0.01, f"{name} {part}: {counted:,} vs {source}"


def test_unknown_family_is_refused_by_name():
    with pytest.raises(ValidationError, match="must be one of flux2-klein, z-image-turbo"):
        families.build_tiny_family("../../etc/passwd", "/nonexistent")
