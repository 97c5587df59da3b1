"""Edits in the engine: a canvas and a mask (or an instruction) in, PIL images out.

The core (``gempix/editing.py``) reads and checks the pictures and builds the canvas (the
source, extended for an outpaint) and the mask; this module draws. A masked edit runs the
model's inpaint view (``pipeline.inpaint_pipeline``) at a size the model likes, brings the
result back to the canvas' size and pastes the source over everything outside the mask, so
those pixels are the source's own, not a VAE round trip of them (as diffusers'
``VaeImageProcessor.apply_overlay`` does for its cropped inpaint).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from PIL import Image

from ..errors import ValidationError
from .adapters import Conditioning, pipeline_kwargs
from .calls import call_kwargs
from .families import FAMILIES, family
from .generate import Progress, announce_compile, step_callback
from .models import LoadedModel
from .pipeline import call_pipeline, inpaint_pipeline, task_pipeline
from .presets import ModelPreset
from .previews import OnPreview
from .request import Plan, plan

# SD-style families whose pipeline AutoPipelineForInpainting can take over (``from_pipe``);
# the current families say what they have in ``families.<family>.PIPELINES``.
INPAINT_FAMILIES = ("sd", "sdxl", "flux", "custom")


def can_inpaint(preset: ModelPreset) -> bool:
    if preset.family in FAMILIES:
        return "inpaint" in family(preset.family).PIPELINES
    return preset.family in INPAINT_FAMILIES


def inpainter(loaded: LoadedModel):
    """The loaded model's inpaint pipeline, over the same weights."""
    if loaded.preset.family in FAMILIES:
        return task_pipeline(loaded, "inpaint")
    return inpaint_pipeline(loaded)


def instructed(loaded: LoadedModel):
    """The pipeline that edits by instruction: the family's edit pipeline, or (FLUX.2
    [klein]) its text-to-image one, which reads the source among its ``image=[...]``."""
    if "edit" in family(loaded.preset.family).PIPELINES:
        return task_pipeline(loaded, "edit")
    return loaded.pipe


@dataclasses.dataclass(frozen=True)
class EditJob:
    """An edit resolved against one model: its plan (at the model's size), the canvas the
    result has, and the mask (None: by instruction)."""

    plan: Plan
    canvas: Image.Image
    mask: Image.Image | None
    references: tuple[Image.Image, ...] = ()


def model_size(canvas: tuple[int, int], preset: ModelPreset) -> tuple[int, int]:
    """The canvas' aspect at no more than the model's native pixel count, in its multiple."""
    multiple = preset.size_multiple
    scale = min(1.0, math.sqrt(preset.native[0] * preset.native[1] / (canvas[0] * canvas[1])))
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in canvas)


def plan_edit(
    request: Any,
    preset: ModelPreset,
    canvas: Image.Image,
    mask: Image.Image | None,
    references: tuple[Image.Image, ...] = (),
) -> EditJob:
    """Check the request against the model and resolve it (seeds, steps, guidance, size).

    ``request`` has the fields of ``engine.request.Asked`` (the core's ``EditRequest``).
    """
    if mask is None and not preset.can_edit:
        raise ValidationError(
            f"model: {preset.name} cannot edit by instruction; draw a mask (inpaint) or "
            "outpaint with it, or choose a model that edits."
        )
    if mask is not None and not can_inpaint(preset):
        raise ValidationError(f"mask: {preset.name} cannot inpaint; edit by instruction instead.")
    if references and not preset.takes_references:
        raise ValidationError(
            f"references: {preset.name} does not read reference pictures in an edit."
        )
    width, height = model_size(canvas.size, preset)
    resolved = plan(
        _Sized(request, width, height), preset
    )  # seeds, steps and guidance as for generating
    if mask is not None and resolved.steps * request.strength < 1:
        raise ValidationError(
            f"strength: steps x strength must be at least 1 so one denoising step runs; "
            f"got {resolved.steps} x {request.strength}. Raise steps or strength."
        )
    resolved = dataclasses.replace(resolved, strength=request.strength)
    return EditJob(resolved, canvas, mask, references)


class _Sized:
    """``request`` read at the model's size, with no init image (the canvas is the edit's)."""

    def __init__(self, request: Any, width: int, height: int):
        self._request, self.width, self.height = request, width, height
        self.aspect, self.resolution, self.init_image = None, "native", None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def blend(picture: Image.Image, canvas: Image.Image, mask: Image.Image) -> Image.Image:
    """``picture`` inside the mask, ``canvas`` outside it (soft edges mix the two)."""
    picture = picture.convert("RGB")
    if picture.size != canvas.size:
        picture = picture.resize(canvas.size, Image.Resampling.LANCZOS)
    return Image.composite(picture, canvas, mask)


def run_edit(
    loaded: LoadedModel,
    job: EditJob,
    progress: Progress | None = None,
    conditioning: Conditioning | None = None,
    on_preview: OnPreview | None = None,
) -> list[Image.Image]:
    """Draw ``job``: one image per seed, at the canvas' size."""
    import torch

    resolved = job.plan
    size = (resolved.width, resolved.height)
    source = job.canvas.resize(size, Image.Resampling.LANCZOS)
    kwargs = call_kwargs(
        loaded.preset,
        prompt=resolved.prompt,
        negative_prompt=resolved.negative_prompt,
        steps=resolved.steps,
        guidance=resolved.guidance,
        width=size[0],
        height=size[1],
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in resolved.seeds],
        num_images_per_prompt=resolved.num_images,
        images=() if job.mask is not None else (source, *job.references),
    )
    kwargs["callback_on_step_end"] = step_callback(loaded, progress, on_preview)
    if job.mask is not None:
        mask = job.mask.resize(size, Image.Resampling.BILINEAR)
        kwargs.update(image=source, mask_image=mask, strength=resolved.strength)
    with loaded.lock, torch.inference_mode():
        pipe = inpainter(loaded) if job.mask is not None else instructed(loaded)
        kwargs.update(pipeline_kwargs(loaded, conditioning, resolved.guidance))
        announce_compile(loaded, resolved, progress)
        pictures = call_pipeline(pipe, kwargs)
    if job.mask is None:  # an instruction edit redraws the whole picture
        return [picture.convert("RGB").resize(job.canvas.size) for picture in pictures]
    return [blend(picture, job.canvas, job.mask) for picture in pictures]
