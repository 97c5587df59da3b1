"""What one pipeline call gets from the adapters: each slot's scale and its image embeddings.

Every call of a pipeline with adapters loaded must pass ``ip_adapter_image_embeds``, used or
not: a slot without a reference gets zeros at scale 0, which diffusers' attention processor
skips (``pipeline_kwargs`` does both). The scales live in the shared UNet's attention
processors: set them under ``loaded.lock``, together with the pipeline call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .embeddings import ReferenceEmbeddings
from .limits import KINDS, check_strength
from .loading import adapter_set, require_adapters


def style_scales(strength: float, unet: Any = None) -> dict:
    """InstantStyle's style-only per-block scales, for ``pipe.set_ip_adapter_scale``.

    The style block is the UNet's first (lowest-resolution) up block with cross-attention:

    * SDXL (``unet=None``, or an SDXL UNet): ``{"up": {"block_0": [0.0, s, 0.0]}}``, only the
      middle attention of ``up_blocks.0``, the published InstantStyle recipe;
    * SD 1.5 / 2.x (``up_blocks.0`` has no attention): ``{"up": {"block_1": s}}``, all of
      ``up_blocks.1``, as InstantStyle's own SD 1.5 script does;
    * tiny (``up_blocks.0`` has 2 attentions): ``{"up": {"block_0": [0.0, s]}}``, the SDXL
      rule: only the second attention of the first cross-attention up block.

    Every other block (down, mid) gets 0 through diffusers' default for unnamed blocks.
    """
    strength = float(strength)
    if unet is None:
        return {"up": {"block_0": [0.0, strength, 0.0]}}
    config = getattr(unet, "config", unet)  # a UNet's config is a dict too (FrozenDict)
    up_types = list(config["up_block_types"])
    block = next((i for i, name in enumerate(up_types) if "CrossAttn" in name), None)
    if block is None:
        raise ValueError("this UNet has no cross-attention up block to carry a style")
    if block > 0:
        return {"up": {f"block_{block}": strength}}
    per_block = config["layers_per_block"]
    if not isinstance(per_block, int):
        per_block = list(reversed(per_block))[block]
    attentions = [0.0] * (per_block + 1)
    attentions[min(1, len(attentions) - 1)] = strength
    return {"up": {f"block_{block}": attentions}}


def set_scales(loaded, *, style: float = 0.0, character: float = 0.0) -> list:
    """Set each loaded adapter's scale; 0 switches a slot off. Returns what was set.

    Call under ``loaded.lock``, right before the pipeline call: the scales live in the shared
    UNet's attention processors.
    """
    state = require_adapters(loaded)
    style = check_strength(style, "style_strength")
    character = check_strength(character, "character_strength")
    for kind, value in (("style", style), ("character", character)):
        if value and kind not in state.kinds:
            raise RuntimeError(f"The {kind} adapter is not loaded: call ensure_adapters first.")
    configs: list = []
    for kind in state.kinds:
        if kind == "style":
            configs.append(style_scales(style, loaded.pipe.unet) if style else 0.0)
        else:
            configs.append(character)
    loaded.pipe.set_ip_adapter_scale(configs)
    return configs


def prepare_ip_embeds(
    loaded,
    *,
    style: ReferenceEmbeddings | None = None,
    character: ReferenceEmbeddings | None = None,
    guidance: float = 0.0,
) -> list:
    """The ``ip_adapter_image_embeds`` list for the pipeline call: one tensor per loaded slot.

    Shapes follow diffusers' ``prepare_ip_adapter_image_embeds``: (1, n, dim) for the plain
    adapter and (1, n, tokens, width) for plus; with classifier-free guidance (guidance > 1 on
    a UNet without guidance embedding) each is ``cat([negative, positive])`` with a zero
    negative for plain and the zero-image hidden states for plus, as diffusers computes them.
    A slot with no reference gets zeros; pair it with scale 0 (``set_scales``). Every
    generation on a pipeline with adapters loaded must pass this list, used or not.
    """
    import torch

    state = require_adapters(loaded)
    pipe = loaded.pipe
    cfg = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
    dtype = loaded.dtype if loaded.dtype is not None else pipe.unet.dtype  # (walks modules)
    given = {"style": style, "character": character}
    for kind, reference in given.items():
        if reference is None:
            continue
        if kind not in state.kinds:
            raise RuntimeError(f"The {kind} adapter is not loaded: call ensure_adapters first.")
        if reference.encoder != state.encoder_id:
            raise ValueError(
                f"{kind} embeddings were made by another image encoder ({reference.encoder}, "
                f"this model's is {state.encoder_id}): embed the references again."
            )
    embeds = []
    for kind in state.kinds:
        reference = given[kind]
        if kind == "style":
            positive = (
                reference.image_embeds[None]
                if reference is not None
                else torch.zeros(1, 1, state.projection_dim)
            )
            negative = torch.zeros_like(positive)
        else:
            tokens, width = state.hidden_shape
            positive = (
                reference.hidden_states[None]
                if reference is not None
                else torch.zeros(1, 1, tokens, width)
            )
            negative = state.uncond_hidden.expand(positive.shape[1], -1, -1)[None]
        tensor = torch.cat([negative, positive]) if cfg else positive
        embeds.append(tensor.to(device=loaded.device, dtype=dtype))
    return embeds


@dataclasses.dataclass(frozen=True)
class Conditioning:
    """The image conditioning of one generation: embeddings and the strength of each slot,
    or, for a model that reads reference pictures natively (FLUX.2 klein, Qwen-Image-Edit),
    the pictures themselves in ``images`` (passed as ``image=[...]`` by ``calls``)."""

    style: ReferenceEmbeddings | None = None
    style_strength: float = 0.0
    character: ReferenceEmbeddings | None = None
    character_strength: float = 0.0
    images: tuple = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in KINDS if getattr(self, kind) is not None)


def pipeline_kwargs(loaded, conditioning: Conditioning | None, guidance: float) -> dict:
    """What a pipeline call adds for the adapters: nothing while none is loaded; otherwise the
    scales are set (a slot without a reference at 0) and the embeddings passed, as every call
    of a pipeline with adapters must. Call under ``loaded.lock``, then call the pipeline."""
    if adapter_set(loaded) is None:
        if conditioning is not None and conditioning.kinds:
            raise RuntimeError("No IP-Adapter is loaded: call ensure_adapters first.")
        return {}
    conditioning = conditioning or Conditioning()
    set_scales(
        loaded,
        style=conditioning.style_strength if conditioning.style is not None else 0.0,
        character=conditioning.character_strength if conditioning.character is not None else 0.0,
    )
    embeds = prepare_ip_embeds(
        loaded, style=conditioning.style, character=conditioning.character, guidance=guidance
    )
    return {"ip_adapter_image_embeds": embeds}
