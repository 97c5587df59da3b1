"""Other tools read GemPix's infotext as A1111's: an upscaled image says the size the model
drew (``Size``) and how it grew (``Hires upscale``/``resize``/``upscaler``), so a tool that
regenerates from it uses the base size. Read with sd-parsers, a third-party reader."""

from __future__ import annotations

from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from gempix.params import GenerationRequest


def read(path):
    with Image.open(path) as image:
        return ParserManager().parse(image)


def test_an_upscaled_image_says_its_base_size_and_hires_fields(studio):
    source = studio.generate(GenerationRequest("a lighthouse", seed=4, width=96, height=64))
    plain = read(source.images[0].path)
    assert plain.generator == Generators.AUTOMATIC1111
    assert plain.metadata["Size"] == "96x64"
    assert not any(key.startswith("Hires") for key in plain.metadata)

    big = studio.upscale(source.images[0].id, width=192, height=128, upscaler="lanczos")
    found = read(big.images[0].path)
    assert found.generator == Generators.AUTOMATIC1111
    width, height = (int(side) for side in found.metadata["Size"].split("x"))
    assert (width, height) == (96, 64)  # what a regenerating tool asks the model for
    assert found.metadata["Hires upscale"] == "2"
    assert found.metadata["Hires resize"] == "192x128"
    assert found.metadata["Hires upscaler"] == "lanczos"
    assert "Upscaler" not in found.metadata  # not an A1111 key
    (sampler,) = found.samplers
    assert sampler.parameters["seed"] == "4" and sampler.prompts[0].value == "a lighthouse"
