"""PNG metadata: readable by other tools, reproducible, disclosed as AI, prompt optional."""

from __future__ import annotations

import dataclasses
import re

from PIL import Image

from gempix.metadata import AI_SOURCE_TYPE, XMP_KEY, read_params
from gempix.params import GenerationRequest
from gempix.service import Studio


def parse_infotext(text: str) -> tuple[list[str], dict[str, str]]:
    """How existing readers split "parameters": prompt lines, then "Key: value" pairs."""
    *head, last = text.split("\n")
    pairs = dict(re.findall(r"\s*([\w ]+): ([^,]+)(?:,|$)", last))
    return head, pairs


def test_metadata_round_trip(shared_studio):
    request = GenerationRequest(
        "a café at night, ünïcödé ✨", negative_prompt="blurry", guidance=4.5, seed=99
    )
    image = shared_studio.generate(request).images[0]
    with Image.open(image.path) as png:
        info = dict(png.info)
    head, pairs = parse_infotext(info["parameters"])
    assert head == ["a café at night, ünïcödé ✨", "Negative prompt: blurry"]
    assert pairs["Steps"] == "2" and pairs["Seed"] == "99" and pairs["CFG scale"] == "4.5"
    assert pairs["Size"] == "64x64" and pairs["Model"] == "tiny" and pairs["Sampler"] == "Euler"
    params = read_params(image.path)
    assert params == image.params
    assert params["prompt"] == "a café at night, ünïcödé ✨" and params["ai_generated"] is True
    assert f'DigitalSourceType="{AI_SOURCE_TYPE}"' in info[XMP_KEY]


def test_prompt_can_be_left_out_of_metadata(settings, tiny_models):
    sentinel = "zebra-sentinel-7f3a"
    silent = dataclasses.replace(settings, metadata_prompt=False)
    with Studio(silent, models=tiny_models) as studio:
        request = GenerationRequest(sentinel, negative_prompt=sentinel + "-neg")
        image = studio.generate(request).images[0]
    assert sentinel.encode() not in image.path.read_bytes()
    params = read_params(image.path)
    assert "prompt" not in params and "negative_prompt" not in params
    assert params["seed"] == image.seed
    with Image.open(image.path) as png:
        assert png.info["parameters"].startswith("Steps: 2")
        assert AI_SOURCE_TYPE in png.info[XMP_KEY]
