"""IP-Adapter engine: tiny adapters built in code, loaded through diffusers' real path.

Pixel comparisons use the pipeline's float output in [0, 1]. "Same pixels" means a maximum
absolute difference of at most SAME (1e-6; diffusers' processor skips a slot at scale 0, so
it is exactly 0 in practice); "different" means more than DIFFERENT (1e-3).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import types
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gempix.engine import adapters, tiny_adapters
from gempix.engine.models import LoadedModel, ModelManager
from gempix.engine.presets import PRESETS
from gempix.errors import ModelUnavailableError, ValidationError

SAME = 1e-6
DIFFERENT = 1e-3


def picture(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def generate(loaded, embeds=None, guidance: float = 0.0, seed: int = 1) -> np.ndarray:
    extra = {} if embeds is None else {"ip_adapter_image_embeds": embeds}
    return loaded.pipe(
        prompt="a lighthouse at dawn",
        num_inference_steps=2,
        guidance_scale=guidance,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
        **extra,
    ).images


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def tree_digest(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def load_tiny(folder, data_dir):
    from gempix.settings import Settings

    shutil.copytree(folder, data_dir / "models" / "tiny")
    return ModelManager(Settings.load({}, data_dir=str(data_dir), model="tiny")).get()


@pytest.fixture(scope="module")
def adapted_folder(tiny_folder):
    """The tiny model: ``ensure_tiny`` builds its adapters with it."""
    assert tiny_adapters.is_built(tiny_folder)
    return tiny_folder


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, adapted_folder):
    """One tiny pipeline: baselines drawn before any adapter loads, then both adapters."""
    loaded = load_tiny(adapted_folder, tmp_path_factory.mktemp("adapters-data"))
    baselines = {guidance: generate(loaded, guidance=guidance) for guidance in (0.0, 3.0)}
    adapters.ensure_adapters(loaded, ("style", "character"))
    reference = adapters.embed_images(loaded, [picture(1)])
    return types.SimpleNamespace(loaded=loaded, baselines=baselines, reference=reference)


# --- the builder ---------------------------------------------------------------------------


def test_tiny_adapters_built_identically_twice(tmp_path, tiny_folder):
    digests = []
    for name in ("one", "two"):
        (tmp_path / name / "unet").mkdir(parents=True)
        shutil.copy(tiny_folder / "unet" / "config.json", tmp_path / name / "unet")
        digests.append(tree_digest(tiny_adapters.build_tiny_adapters(tmp_path / name)))
    assert digests[0] == digests[1]
    assert set(tiny_adapters.WEIGHTS.values()) <= set(digests[0])
    assert "image_encoder/model.safetensors" in digests[0]
    assert "image_encoder/preprocessor_config.json" in digests[0]


def test_weight_files_use_the_published_layout(adapted_folder):
    from safetensors import safe_open

    path = adapted_folder / "ip_adapter" / tiny_adapters.WEIGHTS["plus"]
    with safe_open(path, framework="pt") as handle:
        keys = set(handle.keys())
    assert {"image_proj.latents", "image_proj.layers.0.0.to_kv.weight"} <= keys
    # The tiny UNet has 4 cross-attention layers: ids 1, 3, 5, 7 as in h94/IP-Adapter.
    assert {key.split(".")[1] for key in keys if key.startswith("ip_adapter.")} == {
        "1",
        "3",
        "5",
        "7",
    }


# --- loading --------------------------------------------------------------------------------


def test_loaded_through_load_ip_adapter(adapted):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
    from diffusers.models.embeddings import ImageProjection, IPAdapterPlusImageProjection
    from transformers import CLIPVisionModelWithProjection

    pipe = adapted.loaded.pipe
    state = adapted.loaded.adapters
    assert state.kinds == ("style", "character")
    assert isinstance(pipe.image_encoder, CLIPVisionModelWithProjection)
    layers = pipe.unet.encoder_hid_proj.image_projection_layers
    assert [type(layer) for layer in layers] == [ImageProjection, IPAdapterPlusImageProjection]
    cross = [p for p in pipe.unet.attn_processors.values() if hasattr(p, "to_k_ip")]
    assert len(cross) == 4 and all(isinstance(p, IPAdapterAttnProcessor2_0) for p in cross)

    # The Resampler's weights survived the trip through the original key layout: rebuild the
    # module from the builder's seed and compare every tensor diffusers loaded.
    torch.manual_seed(tiny_adapters.SEEDS["plus"])
    expected = IPAdapterPlusImageProjection(
        embed_dims=tiny_adapters.ENCODER_WIDTH,
        output_dims=32,
        hidden_dims=tiny_adapters.PLUS_WIDTH,
        heads=tiny_adapters.PLUS_HEADS,
        num_queries=tiny_adapters.PLUS_QUERIES,
    ).state_dict()
    loaded = layers[1].state_dict()
    assert expected.keys() == loaded.keys()
    assert all(torch.equal(expected[key], loaded[key]) for key in expected)


def test_switching_never_reloads(adapted_folder, tmp_path):
    loaded = load_tiny(adapted_folder, tmp_path)
    unet, text_encoder = loaded.pipe.unet, loaded.pipe.text_encoder
    first = adapters.ensure_adapters(loaded, ["style"])
    assert first.kinds == ("style",)
    # A new kind reloads the adapters only, keeping the style slot; the base model stays.
    both = adapters.ensure_adapters(loaded, ["character"])
    assert both.kinds == ("style", "character")
    encoder, projection = loaded.pipe.image_encoder, loaded.pipe.unet.encoder_hid_proj
    processors = dict(loaded.pipe.unet.attn_processors)
    reference = adapters.embed_images(loaded, [picture(1)])
    for style, character in ((0.0, 1.0), (0.0, 0.0), (1.0, 0.0)):
        assert adapters.ensure_adapters(loaded, ["style", "character"]) is both
        adapters.set_scales(loaded, style=style, character=character)
        generate(loaded, adapters.prepare_ip_embeds(loaded, style=reference, character=reference))
    assert loaded.pipe.unet is unet and loaded.pipe.text_encoder is text_encoder
    assert loaded.pipe.image_encoder is encoder
    assert loaded.pipe.unet.encoder_hid_proj is projection
    assert all(loaded.pipe.unet.attn_processors[k] is v for k, v in processors.items())


def test_model_without_published_adapter_is_a_clear_error():
    pipe = types.SimpleNamespace(name_or_path="stabilityai/sd-turbo")
    loaded = LoadedModel(PRESETS["sd-turbo"], pipe, "cpu", torch.float32)
    with pytest.raises(ValidationError, match="no.*published|none is published"):
        adapters.ensure_adapters(loaded)


def test_offline_a_real_preset_fails_at_once_naming_the_files_to_download(tmp_path, monkeypatch):
    """conftest sets HF_HUB_OFFLINE=1: the Hub counts as unreachable and nothing is cached, so
    loading fails before any I/O with an ``hf download`` command. The files it names are the
    ones that make the adapters load offline: all of them in the cache count as downloaded,
    any one missing does not."""
    from huggingface_hub import constants

    from gempix.engine.adapters.loading import adapters_downloaded

    pipe = types.SimpleNamespace(name_or_path="stabilityai/sdxl-turbo")
    loaded = LoadedModel(PRESETS["sdxl-turbo"], pipe, "cpu", torch.float32)
    with pytest.raises(ModelUnavailableError) as caught:
        adapters.ensure_adapters(loaded, hub_timeout=0.5)
    assert getattr(loaded, "adapters", None) is None
    command = caught.value.message.split("Download them once while online with: ")[1]
    program, verb, repo, *files = command.split()
    assert (program, verb, repo) == ("hf", "download", "h94/IP-Adapter")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    cached = tmp_path / "models--h94--IP-Adapter"
    (cached / "refs").mkdir(parents=True)
    (cached / "refs" / "main").write_text("0" * 40)
    snapshot = cached / "snapshots" / ("0" * 40)
    files_needed = PRESETS["sdxl-turbo"].adapters
    assert not adapters_downloaded(files_needed)
    for name in files:
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(b"weights")
    assert adapters_downloaded(files_needed)
    for name in files:
        (snapshot / name).rename(snapshot / "aside")
        assert not adapters_downloaded(files_needed), f"{name} is named but not needed"
        (snapshot / "aside").rename(snapshot / name)


# --- the zero / non-zero pairs -------------------------------------------------------------


@pytest.mark.parametrize("guidance", [0.0, 3.0], ids=["no-cfg", "cfg"])
def test_character_strength_zero_is_no_adapter_and_one_differs(adapted, guidance):
    loaded, baseline = adapted.loaded, adapted.baselines[guidance]
    embeds = adapters.prepare_ip_embeds(loaded, character=adapted.reference, guidance=guidance)
    adapters.set_scales(loaded, character=0.0)
    off = generate(loaded, embeds, guidance)
    adapters.set_scales(loaded, character=1.0)
    on = generate(loaded, embeds, guidance)
    assert max_diff(off, baseline) <= SAME, "character at strength 0 changed the image"
    assert max_diff(on, baseline) > DIFFERENT, "character at strength 1 left the image unchanged"


@pytest.mark.parametrize("guidance", [0.0, 3.0], ids=["no-cfg", "cfg"])
def test_style_strength_zero_is_no_adapter_and_one_differs(adapted, guidance):
    loaded, baseline = adapted.loaded, adapted.baselines[guidance]
    embeds = adapters.prepare_ip_embeds(loaded, style=adapted.reference, guidance=guidance)
    adapters.set_scales(loaded, style=0.0)
    off = generate(loaded, embeds, guidance)
    adapters.set_scales(loaded, style=1.0)
    on = generate(loaded, embeds, guidance)
    assert max_diff(off, baseline) <= SAME, "style at strength 0 changed the image"
    assert max_diff(on, baseline) > DIFFERENT, "style at strength 1 left the image unchanged"


def test_style_scales_touch_only_the_style_block(adapted):
    loaded = adapted.loaded
    adapters.set_scales(loaded, style=0.7, character=0.3)
    scales = {
        name: processor.scale
        for name, processor in loaded.pipe.unet.attn_processors.items()
        if hasattr(processor, "scale")
    }
    style_block = "up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor"
    assert scales.pop(style_block) == [0.7, 0.3]
    assert scales and all(value == [0.0, 0.3] for value in scales.values())


def test_style_scales_recipes():
    assert adapters.style_scales(0.8) == {"up": {"block_0": [0.0, 0.8, 0.0]}}  # SDXL
    sdxl = {
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "layers_per_block": 2,
    }
    assert adapters.style_scales(0.8, sdxl) == {"up": {"block_0": [0.0, 0.8, 0.0]}}
    sd15 = {
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "layers_per_block": 2,
    }
    assert adapters.style_scales(0.8, sd15) == {"up": {"block_1": 0.8}}


def test_style_and_character_together(adapted):
    loaded, baseline = adapted.loaded, adapted.baselines[0.0]
    style, character = adapted.reference, adapters.embed_images(loaded, [picture(2), picture(3)])
    embeds = adapters.prepare_ip_embeds(loaded, style=style, character=character)
    assert [tuple(tensor.shape) for tensor in embeds] == [(1, 1, 32), (1, 2, 17, 32)]
    results = {}
    for style_scale, character_scale in ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)):
        adapters.set_scales(loaded, style=style_scale, character=character_scale)
        results[style_scale, character_scale] = generate(loaded, embeds)
    both = results[1.0, 1.0]
    assert max_diff(both, baseline) > DIFFERENT
    assert max_diff(both, results[1.0, 0.0]) > DIFFERENT, "the character slot did nothing"
    assert max_diff(both, results[0.0, 1.0]) > DIFFERENT, "the style slot did nothing"


def test_batched_item_equals_single_run(adapted):
    loaded = adapted.loaded
    adapters.set_scales(loaded, style=0.5, character=1.0)
    embeds = adapters.prepare_ip_embeds(
        loaded, style=adapted.reference, character=adapted.reference, guidance=3.0
    )
    batch = loaded.pipe(
        prompt="a lighthouse at dawn",
        num_inference_steps=2,
        guidance_scale=3.0,
        width=64,
        height=64,
        num_images_per_prompt=2,
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in (1, 2)],
        ip_adapter_image_embeds=embeds,
        output_type="np",
    ).images
    single = generate(loaded, embeds, guidance=3.0, seed=2)
    assert max_diff(batch[1], single[0]) <= 1e-4, "Batched output differs from single."


# --- cached embeddings -----------------------------------------------------------------------


@pytest.mark.parametrize("guidance", [0.0, 3.0], ids=["no-cfg", "cfg"])
def test_cached_embeddings_run_no_encoder_pass(adapted, guidance):
    loaded = adapted.loaded
    stored = adapters.embeddings_to_bytes(adapters.embed_images(loaded, [picture(4)]))
    calls = []
    hook = loaded.pipe.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        adapters.set_scales(loaded, character=1.0)
        images = []
        for _ in range(2):  # e.g. two requests naming the same saved character
            character = adapters.embeddings_from_bytes(stored)
            embeds = adapters.prepare_ip_embeds(loaded, character=character, guidance=guidance)
            images.append(generate(loaded, embeds, guidance))
        assert calls == [], "a generation with cached embeddings ran the image encoder"
        adapters.embed_images(loaded, [picture(4)])
        assert calls == [1], "the hook does not see encoder passes"  # the seam is real
    finally:
        hook.remove()
    assert max_diff(images[0], images[1]) == 0.0


def test_embeddings_round_trip_and_reject_other_bytes(adapted):
    reference = adapted.reference
    data = adapters.embeddings_to_bytes(reference)
    back = adapters.embeddings_from_bytes(data)
    assert back.encoder == reference.encoder == adapted.loaded.adapters.encoder_id
    assert torch.equal(back.image_embeds, reference.image_embeds)
    assert torch.equal(back.hidden_states, reference.hidden_states)
    import pickle

    from safetensors.torch import save

    other = save({"x": torch.zeros(2)}, metadata={"format": "pt"})
    for bad in (b"", b"\x00" * 4, data[:-10], pickle.dumps(reference.image_embeds), other):
        with pytest.raises(ValidationError, match="embeddings"):
            adapters.embeddings_from_bytes(bad)


def test_embeddings_from_another_encoder_are_refused(adapted):
    stale = adapters.ReferenceEmbeddings(
        adapted.reference.image_embeds, adapted.reference.hidden_states, "0123456789abcdef"
    )
    assert adapters.embeddings_match(adapted.loaded, adapted.reference)
    assert not adapters.embeddings_match(adapted.loaded, stale)
    with pytest.raises(ValueError, match="another image encoder"):
        adapters.prepare_ip_embeds(adapted.loaded, character=stale)


# --- consistency score -----------------------------------------------------------------------


def test_consistency_score(adapted):
    loaded = adapted.loaded
    references = adapters.embed_images(loaded, [picture(5)])
    itself = adapters.consistency_score(loaded, picture(5), references)
    unrelated = adapters.consistency_score(loaded, picture(6, size=80), references)
    assert itself == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= unrelated < itself - 1e-3
    # An output of the pipeline, against the mean of several references.
    several = adapters.embed_images(loaded, [picture(5), picture(7), picture(8)])
    output = Image.fromarray((adapted.baselines[0.0][0] * 255).round().astype(np.uint8))
    assert -1.0 <= adapters.consistency_score(loaded, output, several) <= 1.0


# --- bad input --------------------------------------------------------------------------------


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png_header(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG claiming 20000x20000 pixels, a few dozen bytes long (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00"))


@pytest.mark.parametrize(
    ("references", "message"),
    [
        ([b"this is not an image"], "not a readable image"),
        ([png_bytes(picture(1))[:200]], "truncated or corrupt"),
        ([huge_png_header()], r"references\[0\]"),
        ([png_bytes(picture(i)) for i in range(5)], "1 to 4"),
        ([], "at least one"),
    ],
    ids=["non-image", "truncated", "20000x20000", "five", "none"],
)
def test_bad_references_are_validation_errors(adapted, references, message):
    with pytest.raises(ValidationError, match=message):
        adapters.check_references(references)
    calls = []
    hook = adapted.loaded.pipe.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValidationError, match=message):
            adapters.embed_images(adapted.loaded, references)
    finally:
        hook.remove()
    assert calls == [], "the encoder ran on a rejected reference"


def test_reference_images_are_normalised(adapted):
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    (image,) = adapters.check_references([png_bytes(rgba)])
    assert image.mode == "RGB" and image.size == (40, 30)
    assert adapters.embed_images(adapted.loaded, [png_bytes(rgba)]).count == 1


@pytest.mark.parametrize("value", [-0.1, 2.5, float("nan"), "1", True, None])
def test_bad_strengths(adapted, value):
    with pytest.raises(ValidationError, match="character_strength"):
        adapters.set_scales(adapted.loaded, character=value)


def test_marker_names_the_files(adapted_folder):
    marker = json.loads((adapted_folder / "ip_adapter" / tiny_adapters.MARKER).read_text())
    assert marker["recipe"] == tiny_adapters.ADAPTER_RECIPE
    for name in marker["weights"].values():
        assert (adapted_folder / "ip_adapter" / name).is_file()
