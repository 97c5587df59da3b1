"""FLUX.2 [klein] 4B: ``Flux2KleinPipeline`` (text-to-image and multi-reference editing).

Full size: a 5 + 20 block MMDiT of width 3072 (``TRANSFORMER``), the 32-channel FLUX.2 VAE
(``VAE``, diffusers' ``AutoencoderKLFlux2`` defaults) and Qwen3-4B, whose layers 9, 18 and 27
are stacked into the 7680-wide text features. Step- and guidance-distilled: 4 steps, and the
pipeline ignores ``guidance_scale`` (``is_distilled``), so it reads no negative prompt.

The tiny build keeps every structural rule that the pipeline or GemPix can see: the VAE scale
factor 8 (size multiple 16), the 2x2 latent patchify into ``in_channels = 4 * latent
channels``, three stacked encoder layers at the default indices (9, 18, 27), so the default
call works unchanged, and the distilled flag.
"""

from __future__ import annotations

from typing import Any

from . import qwen_text
from .tiny_build import VAE_GAIN, amplify

NAME = "flux2-klein"
PIPELINES = {
    "text2image": "Flux2KleinPipeline",  # also edits: image=[reference, ...]
    "inpaint": "Flux2KleinInpaintPipeline",
}

# black-forest-labs/FLUX.2-klein-4B transformer/config.json, as diffusers'
# scripts/convert_flux2_to_diffusers.py (get_flux2_transformer_config("klein-4b")) writes it.
TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 128,
    "num_layers": 5,
    "num_single_layers": 20,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": (32, 32, 32, 32),
    "rope_theta": 2000,
    "eps": 1e-6,
    "guidance_embeds": False,
}
# The FLUX.2 VAE: the conversion script builds it as AutoencoderKLFlux2() (the class defaults:
# channels 128/256/512/512, 32 latent channels, 2 layers per block).
VAE: dict[str, Any] = {}
# Layers whose hidden states the pipeline stacks (Flux2KleinPipeline.encode_prompt default).
TEXT_LAYERS = (9, 18, 27)

# FLUX.1-dev's scheduler config, which scripts/convert_flux2_to_diffusers.py gives FLUX.2; the
# pipeline passes its own ``mu`` (compute_empirical_mu), so dynamic shifting must be on.
SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}

# What the benchmark builds at full size: component -> (class, config).
FULL_SIZE: dict[str, tuple[str, dict[str, Any]]] = {
    "transformer": ("Flux2Transformer2DModel", TRANSFORMER),
    "vae": ("AutoencoderKLFlux2", VAE),
    "text_encoder": ("Qwen3ForCausalLM", qwen_text.QWEN3_4B),
}

# Published parameter counts, component -> [(count, source)]: the bf16 checkpoints as the Hub
# (huggingface.co/<repo>) lists them, size / 2 bytes (sizes shown to three digits: at most
# 0.3 % off). Checked within 1 % by tests/test_tiny_families.py and
# benchmarks/bench_families.py. The "4B" of the name is the transformer, rounded.
PUBLISHED: dict[str, list[tuple[float, str]]] = {
    "transformer": [
        (
            7.75e9 / 2,
            "black-forest-labs/FLUX.2-klein-4B: flux-2-klein-4b.safetensors, 7.75 GB",
        )
    ],
    "vae": [
        (
            168_534_016 / 2,
            "JoyFusionAI/dt-flux2-klein-4b: flux_2_vae_f16.ckpt, 168,534,016 B",
        )
    ],
    "text_encoder": [
        (
            8.05e9 / 2,
            "black-forest-labs/FLUX.2-klein-4B/tree/main/text_encoder: 8.05 GB",
        )
    ],
}
HEADLINE = 4e9

TINY_LATENT_CHANNELS = 4
TINY_TEXT_WIDTH = 16


def build_tiny():
    """The tiny ``Flux2KleinPipeline``, every component seeded on its own."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3ForCausalLM

    tokenizer = qwen_text.build_tokenizer()
    torch.manual_seed(0)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=TINY_LATENT_CHANNELS * 4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TINY_TEXT_WIDTH * len(TEXT_LAYERS),
        timestep_guidance_channels=32,
        mlp_ratio=TRANSFORMER["mlp_ratio"],
        axes_dims_rope=(4, 4, 4, 4),
        rope_theta=TRANSFORMER["rope_theta"],
        guidance_embeds=False,
    )
    amplify(transformer)
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 8, 8),  # four levels: scale factor 8, like the real VAE
        layers_per_block=1,
        latent_channels=TINY_LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=64,
    )
    amplify(vae, VAE_GAIN)
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(
        qwen_text.tiny_qwen3(tokenizer, layers=max(TEXT_LAYERS), width=TINY_TEXT_WIDTH)
    )
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=True,
    )
