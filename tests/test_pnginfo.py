"""PNG info: the parameters GemPix, A1111/Forge, Fooocus and ComfyUI write, read back from
pictures the tests make, in the request model's names; nothing found says so."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gempix.errors import ValidationError
from gempix.params import GenerationRequest

A1111 = (
    "a castle on a hill, (masterpiece:1.2)\n"
    "second prompt line\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: 1234, Size: 768x512, Model hash: "
    'abc123, Model: dreamshaper_8, Lora hashes: "a: 1, b: 2", Version: v1.10.1'
)
COMFY = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 99,
            "steps": 12,
            "cfg": 4.0,
            "sampler_name": "euler",
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark"}},
}


def png(**chunks: str) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_gempix_png(shared_studio):
    made = shared_studio.generate(GenerationRequest("a lighthouse", seed=5, steps=2)).images[0]
    info = shared_studio.image_info(made.path)
    assert info.kind == "gempix" and info.model == "tiny"
    assert info.fields["prompt"] == "a lighthouse"
    assert (info.fields["seed"], info.fields["steps"], info.fields["width"]) == (5, 2, 64)


def test_a1111_infotext(shared_studio):
    info = shared_studio.image_info(png(parameters=A1111))
    assert info.kind == "a1111" and info.model == "dreamshaper_8"
    assert info.fields == {
        "prompt": "a castle on a hill, (masterpiece:1.2)\nsecond prompt line",
        "negative_prompt": "blurry, lowres",
        "seed": 1234,
        "steps": 28,
        "guidance": 6.5,
        "width": 768,
        "height": 512,
    }


def test_a1111_infotext_in_a_jpeg(shared_studio):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-be")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, "JPEG", exif=exif)
    info = shared_studio.image_info(buffer.getvalue())
    assert info.kind == "a1111" and info.fields["seed"] == 1234


def test_fooocus_json(shared_studio):
    data = {
        "prompt": "p",
        "negative_prompt": "n",
        "seed": "7",
        "steps": 30,
        "guidance_scale": 4,
        "resolution": "(896, 1152)",
        "base_model": "juggernaut",
    }
    info = shared_studio.image_info(png(parameters=json.dumps(data)))
    assert info.kind == "fooocus" and info.model == "juggernaut"
    assert (info.fields["seed"], info.fields["width"], info.fields["height"]) == (7, 896, 1152)


def test_comfyui_prompt_graph(shared_studio):
    info = shared_studio.image_info(png(prompt=json.dumps(COMFY), workflow="{}"))
    assert info.kind == "comfyui" and info.model == "sdxl.safetensors"
    assert info.fields == {
        "prompt": "a red fox",
        "negative_prompt": "text, watermark",
        "seed": 99,
        "steps": 12,
        "guidance": 4.0,
        "width": 832,
        "height": 1216,
    }


def test_nothing_found_says_so(shared_studio):
    info = shared_studio.image_info(png(comment="hello"))
    assert info.kind is None and info.fields == {}
    assert info.message.startswith("image: no generation parameters found")


def test_not_an_image_is_a_validation_error(shared_studio):
    with pytest.raises(ValidationError, match=r"^image: not a readable image"):
        shared_studio.image_info(b"GIF89 nope")
