"""Every diffusion pipeline call: the one guarded call, and the image-to-image and inpaint
views.

``call_pipeline`` is the only place a pipeline is called (text-to-image, image-to-image, the
detail pass, batches, warm-up). With a float16 VAE it decodes the latents itself
(``decode_safe``): in float16 and, when that overflows into NaN/inf (the black-image failure),
again in float32, remembering to do so from then on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..errors import GemPixError
from .families import FAMILIES, family
from .pipestate import state_of

log = logging.getLogger("gempix.pipeline")
_VIEWS_LOCK = threading.Lock()
OUTPUT_TYPES = ("pil", "np")  # what call_pipeline decodes itself (others: diffusers decodes)


class NumericalError(GemPixError):
    """The model produced NaN/inf latents: no decoder precision can turn them into a picture."""

    status = 500


def _vae_dtype(vae):
    return next(vae.parameters()).dtype


def vae_is_half(pipe) -> bool:
    import torch

    vae = getattr(pipe, "vae", None)
    return vae is not None and _vae_dtype(vae) == torch.float16


def guards_decode(pipe) -> bool:
    """True when ``call_pipeline`` decodes itself: a float16 VAE under a pipeline whose latents
    are plain image latents (SD, SDXL and their img2img pipelines; not FLUX's packed ones)."""
    from diffusers import AutoencoderKL

    vae = getattr(pipe, "vae", None)
    return isinstance(vae, AutoencoderKL) and vae_is_half(pipe) and hasattr(pipe, "unet")


def _unscale(vae, latents):
    import torch

    config = vae.config
    mean = getattr(config, "latents_mean", None)
    std = getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        channels = latents.shape[1]
        mean = torch.tensor(mean).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        std = torch.tensor(std).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        return latents * std / config.scaling_factor + mean
    shift = getattr(config, "shift_factor", None) or 0.0
    return latents / config.scaling_factor + shift


def _decode(vae, latents, dtype):
    device = _vae_execution_device(vae, latents)
    return vae.decode(latents.to(device=device, dtype=dtype), return_dict=False)[0]


def _vae_execution_device(vae, latents):
    hook = getattr(vae, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return execution
    for parameter in vae.parameters():
        if parameter.device.type != "meta":
            return parameter.device
    return latents.device


def decode_safe(pipe, latents, output_type: str = "pil"):
    """Decode latents to images, recovering from float16 overflow.

    Decodes in the VAE's dtype unless this pipeline overflowed before (or is SDXL with
    ``force_upcast``, as diffusers does); when the result holds NaN/inf and the VAE is float16,
    decodes again with the VAE upcast to float32 and remembers that for later calls. NaN
    latents (a denoiser failure) raise ``NumericalError``: no decoder precision fixes those.
    """
    import torch

    vae = pipe.vae
    state = state_of(pipe)
    if not torch.isfinite(latents).all():
        raise NumericalError(
            "The model produced invalid values (NaN) while denoising in "
            f"{str(latents.dtype).replace('torch.', '')}. Try GEMPIX_DTYPE=float32 or bfloat16."
        )
    latents = _unscale(vae, latents.float())  # in float32: 1/scaling_factor can overflow fp16
    half = _vae_dtype(vae) == torch.float16
    force = half and getattr(vae.config, "force_upcast", False) and hasattr(pipe, "upcast_vae")
    with torch.inference_mode():
        image = None
        if not (state.vae_upcast or force) or not half:
            image = _decode(vae, latents, _vae_dtype(vae))
            if half and not torch.isfinite(image).all():
                log.warning("float16 VAE decode overflowed (NaN/inf); decoding in float32")
                with state.lock:
                    state.vae_upcast = True
                image = None
        if image is None:
            vae.to(dtype=torch.float32)
            try:
                image = _decode(vae, latents, torch.float32)
            finally:
                vae.to(dtype=torch.float16)
    if not torch.isfinite(image).all():
        raise NumericalError("The VAE produced invalid values (NaN) even in float32.")
    processor = getattr(pipe, "image_processor", None)
    if processor is None:
        from diffusers.image_processor import VaeImageProcessor

        processor = VaeImageProcessor(vae_scale_factor=getattr(pipe, "vae_scale_factor", 8))
    return processor.postprocess(image.float(), output_type=output_type)


def call_pipeline(pipe, kwargs: Mapping[str, Any]) -> Any:
    """``pipe(**kwargs).images`` (PIL images, or an array for ``output_type="np"``), with the
    VAE decode guarded when it runs in float16."""
    output_type = kwargs.get("output_type", "pil")
    if not guards_decode(pipe) or output_type not in OUTPUT_TYPES:
        return pipe(**kwargs).images
    latents = pipe(**{**kwargs, "output_type": "latent"}).images
    images = decode_safe(pipe, latents, output_type)
    if getattr(pipe, "_all_hooks", None):  # model offload: the VAE goes back to the CPU too
        pipe.maybe_free_model_hooks()
    return images


def img2img_pipeline(loaded):
    """The image-to-image view of the loaded pipeline, built once and kept on ``loaded``.

    ``from_pipe`` shares the already-loaded modules: no second copy of the weights.
    """
    if loaded.img2img is None:
        if loaded.preset.family in FAMILIES:
            loaded.img2img = task_pipeline(loaded, "img2img")
        else:
            from diffusers import AutoPipelineForImage2Image

            loaded.img2img = AutoPipelineForImage2Image.from_pipe(loaded.pipe)
            loaded.img2img.set_progress_bar_config(disable=True)
    return loaded.img2img


def inpaint_pipeline(loaded):
    """The inpainting view of the loaded pipeline, built once and kept on ``loaded``.

    Shares the loaded modules like ``img2img_pipeline``. A plain 4-channel UNet inpaints too:
    diffusers' StableDiffusionInpaintPipeline then blends the source's noised latents back
    outside the mask after every step (its ``num_channels_unet == 4`` branch).
    """
    if loaded.inpaint is None:
        from diffusers import AutoPipelineForInpainting

        loaded.inpaint = AutoPipelineForInpainting.from_pipe(loaded.pipe)
        loaded.inpaint.set_progress_bar_config(disable=True)
    return loaded.inpaint


def task_pipeline(loaded, task: str):
    """A current family's pipeline for ``task`` ("text2image", "img2img", "inpaint", "edit":
    ``families.<family>.PIPELINES``) over the loaded modules, built once and kept.

    The engine API for editing and inpainting: ``task_pipeline(models.get("flux2-klein"),
    "inpaint")``. A task the family has not raises ValidationError naming the ones it has.
    """
    import diffusers

    from ..errors import ValidationError

    if loaded.preset.family not in FAMILIES:
        raise ValidationError(
            f"task: {loaded.name!r} has no {task} pipeline here; the current families "
            f"({', '.join(FAMILIES)}) have."
        )
    classes = family(loaded.preset.family).PIPELINES
    if task not in classes:
        raise ValidationError(
            f"task for {loaded.name} must be one of {', '.join(classes)}, not {task!r}"
        )
    if type(loaded.pipe).__name__ == classes[task]:
        return loaded.pipe
    with _VIEWS_LOCK:  # not loaded.lock: callers may hold it
        if task not in loaded.views:
            view = getattr(diffusers, classes[task]).from_pipe(loaded.pipe)
            view.set_progress_bar_config(disable=True)
            loaded.views[task] = view
    return loaded.views[task]
