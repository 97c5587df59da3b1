"""The keyword arguments of one generation call, written once for every kind of pipeline.

The SD, SDXL and FLUX.1 pipelines, FLUX.2 [klein], Z-Image and Qwen-Image-Edit take the same
request under different names and rules: klein has no negative prompt and reads reference
images as ``image=[...]``; Qwen-Image-Edit's guidance is ``true_cfg_scale`` (true CFG runs only
with a negative prompt, so " " stands in for none, as its model card does) and it always edits
an input image, a blank canvas of the requested size when the request brings none.
``generate.run``, ``batching`` and ``fastpaths.warmup`` all build their calls here, so a
family's rule lives in one place (the preset says which rule applies: ``presets.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CANVAS = (255, 255, 255)  # Qwen-Image-Edit's input picture when a request brings none


def canvas(width: int, height: int):
    """The blank picture an edit-only model draws on for text-to-image."""
    from PIL import Image

    return Image.new("RGB", (width, height), CANVAS)


def call_kwargs(
    preset,
    *,
    prompt: str | list[str],
    negative_prompt: str | list[str] | None,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    generator: Any,
    num_images_per_prompt: int = 1,
    images: Sequence[Any] = (),
) -> dict[str, Any]:
    """One text-to-image call of ``preset``'s pipeline; ``images``: native reference images
    (only for a preset that ``takes_references``; IP-Adapter goes through ``adapters``)."""
    kwargs: dict[str, Any] = dict(
        prompt=prompt,
        num_inference_steps=steps,
        num_images_per_prompt=num_images_per_prompt,
        generator=generator,
        width=width,
        height=height,
    )
    kwargs[preset.guidance_argument] = guidance
    negative = negative_prompt or None
    if preset.guidance_argument == "true_cfg_scale" and negative is None and guidance > 1:
        negative = " "
    if preset.negative_prompt:
        kwargs["negative_prompt"] = negative
    if preset.needs_image:
        kwargs["image"] = list(images) or [canvas(width, height)]
    elif images:
        kwargs["image"] = list(images)
    return kwargs
