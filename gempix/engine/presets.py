"""Model presets: what each named model is, how to run it, and under which license.

Pure data, no torch import, so the CLI can list models instantly. A preset carries everything
later stages need (native size, defaults, size rule, IP-Adapter files, license shown to users,
what the model reads: negative prompt, reference images, an input image to edit). Where each
value of the current families comes from is written in docs/models.md.
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
    pipeline: str = ""  # the diffusers class, for the catalogue (``family`` decides loading)
    negative_prompt: bool = True  # False: the pipeline has no negative prompt; refused
    guidance_argument: str = "guidance_scale"  # Qwen-Image-Edit: "true_cfg_scale"
    references: int = 0  # reference images the model reads natively (image=[...]); 0: none
    needs_image: bool = False  # always edits an input image (a blank canvas when none given)
    can_edit: bool = False  # edits a given picture from an instruction (issue 19 builds on it)
    img2img: bool = True  # has a strength-based image-to-image pipeline
    dtype: str = ""  # the weights' published dtype, used on every device ("" : per device)
    tiny_of: str = ""  # a tiny build of this family (gempix.engine.families), made locally

    @property
    def is_tiny(self) -> bool:
        """Built locally with random weights (``tiny``, ``tiny-<family>``): draws noise."""
        return self.name == "tiny" or bool(self.tiny_of)

    @property
    def takes_references(self) -> bool:
        """Reads a character's or a style's pictures natively, without IP-Adapter."""
        return self.references > 0


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

APACHE = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")

# FLUX.2 [klein] 4B, Z-Image-Turbo, Qwen-Image-Edit-2511 (issue 18); sources in docs/models.md.
# ``family`` names the module in gempix.engine.families that loads and builds each.
CURRENT_FAMILIES = (
    ModelPreset(
        name="flux2-klein",
        repo_id="black-forest-labs/FLUX.2-klein-4B",
        family="flux2-klein",
        native=(1024, 1024),
        steps=4,
        guidance=1.0,  # the model card's value; the distilled pipeline ignores it
        size_multiple=16,
        license=APACHE[0],
        license_url="https://huggingface.co/black-forest-labs/FLUX.2-klein-4B",
        description="FLUX.2 [klein] 4B: 4 steps at 1024 px, text to image and up to 4 "
        "reference images in one model.",
        max_steps=16,
        pipeline="Flux2KleinPipeline",
        negative_prompt=False,
        references=4,
        can_edit=True,
        img2img=False,
        dtype="bfloat16",
    ),
    ModelPreset(
        name="z-image-turbo",
        repo_id="Tongyi-MAI/Z-Image-Turbo",
        family="z-image-turbo",
        native=(1024, 1024),
        steps=8,
        guidance=0.0,
        size_multiple=16,
        license=APACHE[0],
        license_url="https://huggingface.co/Tongyi-MAI/Z-Image-Turbo",
        description="Z-Image-Turbo 6B: 8 steps at 1024 px, strong at text in images.",
        max_steps=32,
        pipeline="ZImagePipeline",
        dtype="bfloat16",
    ),
    ModelPreset(
        name="qwen-image-edit",
        repo_id="Qwen/Qwen-Image-Edit-2511",
        family="qwen-image-edit",
        native=(1024, 1024),
        steps=50,
        guidance=4.0,  # true_cfg_scale, the pipeline's default
        size_multiple=16,
        license=APACHE[0],
        license_url="https://huggingface.co/Qwen/Qwen-Image-Edit-2511",
        description="Qwen-Image-Edit-2511 20B: edits 1-3 input images from an instruction; "
        "needs a 48 GB card or offload.",
        pipeline="QwenImageEditPlusPipeline",
        guidance_argument="true_cfg_scale",
        references=3,
        needs_image=True,
        can_edit=True,
        img2img=False,
        dtype="bfloat16",
    ),
)
TINY_FAMILY_NAMES = {
    "flux2-klein": "tiny-flux2-klein",
    "z-image-turbo": "tiny-z-image",
    "qwen-image-edit": "tiny-qwen-image-edit",
}


def tiny_family(full: ModelPreset) -> ModelPreset:
    """The tiny build of a current family: the same rules at 64 px and 2 steps, float32, and
    guidance at most 1 (Qwen-Image-Edit's true CFG, a second pass per step, only when asked)."""
    return dataclasses.replace(
        full,
        name=TINY_FAMILY_NAMES[full.name],
        repo_id="",  # built locally by gempix.engine.families
        native=(64, 64),
        steps=2,
        guidance=min(full.guidance, 1.0),
        license=f"{APACHE[0]} (random weights built by GemPix)",
        license_url=APACHE[1],
        description=f"Random weights in the {full.name} architecture, built offline: draws "
        "noise. Tests and demos.",
        dtype="",
        tiny_of=full.family,
    )


def can_edit(model: str) -> bool:
    """Whether ``model`` (a preset name) edits a given picture from an instruction."""
    return preset_for(model).can_edit


def takes_references(model: str) -> bool:
    """Whether ``model`` reads reference images natively (``image=[...]``)."""
    return preset_for(model).takes_references


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
        *CURRENT_FAMILIES,
        *(tiny_family(preset) for preset in CURRENT_FAMILIES),
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
