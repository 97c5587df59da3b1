"""Plan in, PIL images out: text-to-image or image-to-image, then upscaling to the target.

Each image of a batch gets its own CPU generator seeded ``seed + i``, so any image can be
regenerated alone from the seed it carries, on any device. The pipeline is shared by every
thread of the process; calls take the model's lock, since schedulers keep per-call state, and
go through ``pipeline.call_pipeline`` like every other pipeline call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import GemPixError
from .adapters import Conditioning, pipeline_kwargs
from .calls import call_kwargs
from .detail import DetailJob
from .fastpaths import compile_notice
from .models import LoadedModel
from .pipeline import call_pipeline, img2img_pipeline
from .previews import OnPreview, chain, decoder_for, preview_callback
from .request import Plan
from .upscale import Upscaler, default_upscaler

log = logging.getLogger("gempix.generate")

# progress(done, total, stage): stage is "compile", "denoise" or "upscale"
Progress = Callable[[int, int, str], None]


def step_callback(loaded: LoadedModel, progress: Progress | None, on_preview: OnPreview | None):
    """The pipeline's ``callback_on_step_end``: progress once per step, then the preview.

    A preview decoder that cannot be had (not downloaded and offline, a model without one)
    costs the preview, never the image: it is logged and the call runs without previews.
    """

    def report(pipeline, step, timestep, callback_kwargs):
        if progress is not None:
            progress(step + 1, pipeline.num_timesteps, "denoise")
        return callback_kwargs

    if on_preview is None:
        return report
    try:
        decoder = decoder_for(loaded)
    except GemPixError as error:
        log.warning("no live previews: %s", error.message)
        return report
    return chain(report, preview_callback(decoder, on_preview))


def announce_compile(
    loaded: LoadedModel, plan: Plan, progress: Progress | None, images: int | None = None
) -> None:
    """Say so before a call of ``images`` images (default: the plan's) compiles the model for
    a new shape, instead of letting a request pay for it silently."""
    batch = plan.num_images if images is None else images
    notice = compile_notice(loaded.pipe, plan.width, plan.height, batch, plan.guidance)
    if notice:
        log.warning(notice)
        if progress is not None:
            progress(0, plan.steps, "compile")


def prompt_warnings(loaded: LoadedModel, plan: Plan) -> list[str]:
    """Say what the model will not read, instead of cutting prompts silently."""
    warnings = []
    tokenizer = getattr(loaded.pipe, "tokenizer", None)
    if tokenizer is not None:
        limit = tokenizer.model_max_length
        for field, text in (("prompt", plan.prompt), ("negative prompt", plan.negative_prompt)):
            ids = tokenizer(text, truncation=False, add_special_tokens=True).input_ids
            if len(ids) > limit:
                dropped = tokenizer.decode(ids[limit - 1 : -1]).strip()
                warnings.append(
                    f"The {field} is {len(ids)} tokens; this model reads {limit}. "
                    f"Ignored: {dropped!r}"
                )
    return warnings


def run(
    loaded: LoadedModel,
    plan: Plan,
    progress: Progress | None = None,
    upscaler: Upscaler | None = None,
    conditioning: Conditioning | None = None,
    on_preview: OnPreview | None = None,
) -> list:
    """Generate ``plan.num_images`` images, upscaled to ``plan.target`` when it differs.

    ``conditioning`` carries style-reference and character embeddings (``adapters``; load
    them first with ``ensure_adapters``), or for a model that reads them natively the
    reference pictures themselves (``conditioning.images``). ``on_preview(step, total,
    image)`` gets a small PIL preview after every denoising step (``previews``). An upscaled
    image carries what was done in ``image.info[UPSCALE_INFO]``. A float16 VAE that overflows
    into a black image is decoded again in float32 (``pipeline.call_pipeline``).
    """
    import torch

    generators = [torch.Generator("cpu").manual_seed(seed) for seed in plan.seeds]
    pipe = loaded.pipe if plan.init_image is None else img2img_pipeline(loaded)
    kwargs = call_kwargs(
        loaded.preset,
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt,
        steps=plan.steps,
        guidance=plan.guidance,
        width=plan.width,
        height=plan.height,
        generator=generators,
        num_images_per_prompt=plan.num_images,
        images=conditioning.images if conditioning is not None else (),
    )
    kwargs["callback_on_step_end"] = step_callback(loaded, progress, on_preview)
    if plan.init_image is not None:  # the image-to-image call: its size is the picture's
        del kwargs["width"], kwargs["height"]
        kwargs.update(image=plan.init_image, strength=plan.strength)
    with loaded.lock, torch.inference_mode():
        kwargs.update(pipeline_kwargs(loaded, conditioning, plan.guidance))
        announce_compile(loaded, plan, progress)
        images = call_pipeline(pipe, kwargs)
    return upscale_all(loaded, plan, images, progress, upscaler)


def upscale_all(
    loaded: LoadedModel,
    plan: Plan,
    images: list,
    progress: Progress | None = None,
    upscaler: Upscaler | None = None,
) -> list:
    """The plan's images at ``plan.target`` (unchanged when the model drew them at that size)."""
    if not plan.upscaled:
        return images
    upscale = (upscaler or default_upscaler()).upscale
    return [
        upscale(image, plan.target, plan.upscaler, progress, DetailJob.from_plan(loaded, plan, i))
        for i, image in enumerate(images)
    ]
