"""Model presets: what each named model is, how to run it, and under which license.

Pure data, no torch import, so the CLI can list models instantly. A preset carries everything
later stages need (native size, defaults, size rule, IP-Adapter files, license shown to users).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class AdapterFiles:
    """Published IP-Adapter weights and the image encoder they expect."""

    repo: str
    subfolder: str
    style: str
    plus: str
    plus_face: str
    encoder_subfolder: str  # in the same repo: load_ip_adapter reads it from there


@dataclasses.dataclass(frozen=True)
class ModelPreset:
    name: str
    repo_id: str
    family: str  # "sd" | "sdxl" | "flux"
    native: tuple[int, int]
    steps: int
    guidance: float
    size_multiple: int
    license: str
    license_url: str
    description: str
    adapters: AdapterFiles | None = None
    max_steps: int = 100

    @property
    def is_tiny(self) -> bool:
        return self.name == "tiny"


SDXL_ADAPTERS = AdapterFiles(
    repo="h94/IP-Adapter",
    subfolder="sdxl_models",
    style="ip-adapter_sdxl_vit-h.safetensors",
    plus="ip-adapter-plus_sdxl_vit-h.safetensors",
    plus_face="ip-adapter-plus-face_sdxl_vit-h.safetensors",
    encoder_subfolder="models/image_encoder",
)
STABILITY_COMMUNITY = (
    "Stability AI Community License",
    "https://stability.ai/community-license-agreement",
)

PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            name="sd-turbo",
            repo_id="stabilityai/sd-turbo",
            family="sd",
            native=(512, 512),
            steps=1,
            guidance=0.0,
            size_multiple=8,
            license=STABILITY_COMMUNITY[0],
            license_url=STABILITY_COMMUNITY[1],
            description="Distilled SD 2.1, one step at 512 px; the CPU default.",
            adapters=None,  # no published IP-Adapter for the SD 2.1 architecture
            max_steps=8,
        ),
        ModelPreset(
            name="sdxl-turbo",
            repo_id="stabilityai/sdxl-turbo",
            family="sdxl",
            native=(512, 512),
            steps=1,
            guidance=0.0,
            size_multiple=8,
            license=STABILITY_COMMUNITY[0],
            license_url=STABILITY_COMMUNITY[1],
            description="Distilled SDXL, 1-4 steps at 512 px; the GPU default.",
            adapters=SDXL_ADAPTERS,
            max_steps=8,
        ),
        ModelPreset(
            name="sdxl",
            repo_id="stabilityai/stable-diffusion-xl-base-1.0",
            family="sdxl",
            native=(1024, 1024),
            steps=30,
            guidance=6.0,
            size_multiple=8,
            license="CreativeML Open RAIL++-M",
            license_url="https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md",
            description="SDXL base 1.0 at 1024 px; best quality of the SD family, slow.",
            adapters=SDXL_ADAPTERS,
        ),
        ModelPreset(
            name="flux-schnell",
            repo_id="black-forest-labs/FLUX.1-schnell",
            family="flux",
            native=(1024, 1024),
            steps=4,
            guidance=0.0,
            size_multiple=16,
            license="Apache-2.0",
            license_url="https://huggingface.co/black-forest-labs/FLUX.1-schnell",
            description="FLUX.1 [schnell], 4 steps at 1024 px; needs a large GPU.",
            adapters=None,
            max_steps=16,
        ),
        ModelPreset(
            name="tiny",
            repo_id="",  # built locally by gempix.engine.tiny
            family="sd",
            native=(64, 64),
            steps=2,
            guidance=0.0,
            size_multiple=8,
            license="Apache-2.0 (random weights built by GemPix)",
            license_url="https://www.apache.org/licenses/LICENSE-2.0",
            description="Random weights, built offline in seconds: draws noise. Tests and demos.",
        ),
    )
}

AUTO_GPU = "sdxl-turbo"
AUTO_CPU = "sd-turbo"


def preset_for(model: str) -> ModelPreset:
    """The preset for a name, or a generic SD-style preset for a repo id / local folder."""
    if model in PRESETS:
        return PRESETS[model]
    name = Path(model).name if Path(model).exists() else model
    return ModelPreset(
        name=name,
        repo_id=model,
        family="custom",
        native=(512, 512),
        steps=25,
        guidance=7.0,
        size_multiple=8,
        license="see the model card",
        license_url=f"https://huggingface.co/{model}" if not Path(model).exists() else "",
        description="A diffusers model chosen by repo id or folder.",
    )
