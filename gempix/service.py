"""The core: what "generate" means, the same for the web UI, HTTP API, CLI and notebooks.

Front doors translate to and from these calls and nothing else, so validation, metadata and
file handling are identical everywhere. ``engine/`` knows nothing of users or files; this
module owns where images go and what they carry.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .engine.generate import Progress, prompt_warnings, run
from .engine.models import LoadedModel, ModelManager
from .engine.presets import ModelPreset
from .engine.request import GenerationRequest, Plan, check, plan
from .engine.upscale import resolved_backend
from .metadata import save_png
from .settings import Settings
from .styles import Style, apply_styles

LOCAL_USER = "local"  # the single user of a CLI or notebook session without a user key
FRONT_DOORS = ("ui", "api", "cli", "notebook")
NEGATIVE_IGNORED = (
    "The negative prompt has no effect at guidance 1 or below (turbo models); "
    "raise guidance to use it."
)


@dataclasses.dataclass(frozen=True)
class GeneratedImage:
    id: str
    path: Path
    seed: int
    width: int
    height: int
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    images: list[GeneratedImage]
    model: str
    warnings: list[str]
    notice: str  # e.g. "serving the offline tiny model"; empty when all is as asked
    duration_ms: float


# Scheduler classes under the names image tools already use in "parameters" text.
SAMPLER_NAMES = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "FlowMatchEulerDiscreteScheduler": "Euler",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DDIMScheduler": "DDIM",
    "LCMScheduler": "LCM",
}


def sampler_name(scheduler: Any) -> str:
    name = type(scheduler).__name__
    return SAMPLER_NAMES.get(name, name)


def image_params(
    loaded: LoadedModel, request: GenerationRequest, resolved: Plan, index: int
) -> dict[str, Any]:
    """Every parameter needed to regenerate image ``index`` of a batch on its own."""
    return {
        "prompt": resolved.prompt,
        "negative_prompt": resolved.negative_prompt,
        "seed": resolved.seeds[index],
        "steps": resolved.steps,
        "guidance": resolved.guidance,
        "sampler": sampler_name(loaded.pipe.scheduler),
        "width": resolved.target[0],
        "height": resolved.target[1],
        "base_width": resolved.width,
        "base_height": resolved.height,
        "aspect": request.aspect,
        "resolution": request.resolution,
        "upscaled": resolved.upscaled,
        "upscaler": resolved_backend(resolved.upscaler) if resolved.upscaled else None,
        "img2img": resolved.init_image is not None,
        "strength": resolved.strength if resolved.init_image is not None else None,
        "model": loaded.name,
        "styles": list(request.styles),
        "batch_index": index,
        "batch_size": resolved.num_images,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "generator": f"GemPix {__version__}",
        "ai_generated": True,
    }


def styled_request(
    request: GenerationRequest, preset: ModelPreset, extra: dict[str, Style] | None = None
) -> GenerationRequest:
    """Apply the request's styles; their recommended values fill only what the user left unset.

    Turbo models (guidance 0 by design) keep their own steps and guidance.
    """
    if not request.styles:
        return request
    styled = apply_styles(request.prompt, request.negative_prompt, request.styles, extra=extra)
    recommended = styled.recommended if preset.guidance > 0 else {}
    sized = request.width is not None or request.height is not None
    steps = recommended.get("steps")
    return dataclasses.replace(
        request,
        prompt=styled.prompt,
        negative_prompt=styled.negative,
        styles=styled.names,
        guidance=request.guidance if request.guidance is not None else recommended.get("guidance"),
        steps=request.steps
        if request.steps is not None or steps is None
        else min(steps, preset.max_steps),
        aspect=request.aspect or (None if sized else styled.recommended.get("aspect")),
    )


def request_from_params(params: dict[str, Any]) -> GenerationRequest:
    """The request that regenerates one image from the ``gempix`` metadata it carries."""
    sized = params.get("aspect") is None
    return GenerationRequest(
        prompt=params["prompt"],
        negative_prompt=params.get("negative_prompt", ""),
        seed=params["seed"],
        steps=params["steps"],
        guidance=params["guidance"],
        width=params["base_width"] if sized else None,
        height=params["base_height"] if sized else None,
        aspect=params.get("aspect"),
        resolution=params.get("resolution", "native"),
        upscaler=params.get("upscaler") or "auto",
    )


class Studio:
    """One per process: settings, the shared model, and (later) the store."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models = ModelManager(settings)

    def model(self) -> LoadedModel:
        return self.models.get()

    def generate(
        self,
        request: GenerationRequest,
        *,
        user_id: str = LOCAL_USER,
        front_door: str = "cli",
        progress: Progress | None = None,
    ) -> GenerationResult:
        started = time.perf_counter()
        check(request)
        loaded = self.model()
        asked = request
        request = styled_request(request, loaded.preset)
        resolved = plan(request, loaded.preset)
        warnings = prompt_warnings(loaded, resolved)
        if asked.negative_prompt.strip() and resolved.guidance <= 1:
            warnings.append(NEGATIVE_IGNORED)
        pictures = run(loaded, resolved, progress)
        images = []
        for index, picture in enumerate(pictures):
            image_id = uuid.uuid4().hex
            params = image_params(loaded, request, resolved, index)
            path = save_png(
                picture,
                self.settings.images_dir / user_id / f"{image_id}.png",
                params,
                include_prompt=self.settings.metadata_prompt,
            )
            images.append(GeneratedImage(image_id, path, params["seed"], *picture.size, params))
        return GenerationResult(
            images=images,
            model=loaded.name,
            warnings=warnings,
            notice=loaded.notice,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
