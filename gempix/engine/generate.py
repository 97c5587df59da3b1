"""Plan in, PIL images out: the only place a diffusion pipeline is called.

Each image of a batch gets its own CPU generator seeded ``seed + i``, so any image can be
regenerated alone from the seed it carries, on any device. The pipeline is shared by every
thread of the process; calls take the model's lock, since schedulers keep per-call state.
"""

from __future__ import annotations

from collections.abc import Callable

from .detail import DetailJob
from .models import LoadedModel
from .request import Plan
from .upscale import Upscaler, upscale

# progress(done, total, stage): stage is "denoise" or "upscale"
Progress = Callable[[int, int, str], None]


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


def _pipeline_for(loaded: LoadedModel, plan: Plan):
    if plan.init_image is None:
        return loaded.pipe
    if loaded.img2img is None:
        from diffusers import AutoPipelineForImage2Image

        # from_pipe shares the already-loaded modules: no second copy of the weights.
        loaded.img2img = AutoPipelineForImage2Image.from_pipe(loaded.pipe)
        loaded.img2img.set_progress_bar_config(disable=True)
    return loaded.img2img


def run(
    loaded: LoadedModel,
    plan: Plan,
    progress: Progress | None = None,
    upscaler: Upscaler | None = None,
) -> list:
    """Generate ``plan.num_images`` images, upscaled to ``plan.target`` when it differs.

    An upscaled image carries what was done in ``image.info[UPSCALE_INFO]``.
    """
    import torch

    generators = [torch.Generator("cpu").manual_seed(seed) for seed in plan.seeds]
    pipe = _pipeline_for(loaded, plan)

    def on_step_end(pipeline, step, timestep, callback_kwargs):
        if progress is not None:
            progress(step + 1, pipeline.num_timesteps, "denoise")
        return callback_kwargs

    kwargs = dict(
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt or None,
        num_inference_steps=plan.steps,
        guidance_scale=plan.guidance,
        num_images_per_prompt=plan.num_images,
        generator=generators,
        callback_on_step_end=on_step_end,
    )
    if plan.init_image is None:
        kwargs.update(width=plan.width, height=plan.height)
    else:
        kwargs.update(image=plan.init_image, strength=plan.strength)
    with loaded.lock, torch.inference_mode():
        images = pipe(**kwargs).images
    if plan.upscaled:
        images = [
            upscale(
                image,
                plan.target,
                plan.upscaler,
                progress,
                upscaler=upscaler,
                detail=DetailJob.from_plan(loaded, plan, index),
            )
            for index, image in enumerate(images)
        ]
    return images
