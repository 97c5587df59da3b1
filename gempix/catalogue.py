"""The model catalogue: every preset with what a user needs to choose one.

Size, memory per mode, license, whether it edits or reads reference images, which prompt
fields it reads, its live-preview decoder ("none" where no TAESD-like decoder exists), and
whether it is on this machine. ``Studio.catalogue`` returns it; ``gempix models`` and the
API's ``GET /models`` show it. Everything comes from the presets and the memory advisor
(``engine/presets.py``, ``engine/memory.py``): no weights are loaded to answer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .engine.families.tiny_build import is_built as family_built
from .engine.memory import CONCRETE_MODES, PRESET_PARAMS, preset_needs
from .engine.models import is_downloaded
from .engine.presets import PRESETS, ModelPreset
from .engine.previews import preview_decoder
from .engine.tiny import is_built as tiny_built


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    source: str  # a repo id, or "built locally"
    pipeline: str
    native: tuple[int, int]
    steps: int
    guidance: float
    license: str
    license_url: str
    parameters: int  # all weights, denoiser + text encoders + VAE
    dtype: str  # what the weights load as on a GPU
    memory_gib: dict[str, float]  # mode -> GiB for one native-size image on a GPU
    can_edit: bool
    references: int  # reference images read natively; 0: none (IP-Adapter where listed)
    ip_adapter: bool
    negative_prompt: bool
    img2img: bool
    previews: str  # the preview decoder, or "none"
    downloaded: bool


def _here(preset: ModelPreset, models_dir: Path) -> bool:
    if preset.name == "tiny":
        return tiny_built(models_dir / "tiny")
    if preset.tiny_of:
        from .engine.families import RECIPE_VERSION

        return family_built(models_dir / preset.name, preset.tiny_of, RECIPE_VERSION)
    return is_downloaded(preset.repo_id)


def _gpu_dtype(preset: ModelPreset) -> str:
    """As ``engine/runtime.resolve_dtype`` loads it on a GPU with GEMPIX_DTYPE=auto."""
    if preset.is_tiny:
        return "float32"
    return preset.dtype or ("bfloat16" if preset.family == "flux" else "float16")


def model_info(preset: ModelPreset, models_dir: Path) -> ModelInfo:
    """What the catalogue says about one preset (memory on a CUDA card, in its GPU dtype)."""
    family = "tiny" if preset.is_tiny else preset.family
    needs = preset_needs(preset, "cuda")
    return ModelInfo(
        name=preset.name,
        description=preset.description,
        source="built locally" if preset.is_tiny else preset.repo_id,
        pipeline=preset.pipeline or "auto (diffusers AutoPipeline)",
        native=preset.native,
        steps=preset.steps,
        guidance=preset.guidance,
        license=preset.license,
        license_url=preset.license_url,
        parameters=PRESET_PARAMS.get(family, PRESET_PARAMS["custom"])[0],
        dtype=_gpu_dtype(preset),
        memory_gib={mode: round(needs[mode] / 1024**3, 1) for mode in CONCRETE_MODES},
        can_edit=preset.can_edit,
        references=preset.references,
        ip_adapter=preset.adapters is not None or preset.name == "tiny",
        negative_prompt=preset.negative_prompt,
        img2img=preset.img2img,
        previews=preview_decoder(preset),
        downloaded=_here(preset, models_dir),
    )


def catalogue(models_dir: Path) -> list[ModelInfo]:
    """Every preset, in the order of ``PRESETS``."""
    return [model_info(preset, Path(models_dir)) for preset in PRESETS.values()]
