"""Qwen-Image-Edit-2511: ``QwenImageEditPlusPipeline`` (1-3 input images) and
``QwenImageEditInpaintPipeline``.

Full size: the 60-layer Qwen-Image MMDiT at width 3072 (``TRANSFORMER``; 2511 adds
``zero_cond_t``, which conditions the input images at t = 0 and adds no weights), the
16-channel causal-3D Qwen-Image VAE (``VAE``) and Qwen2.5-VL-7B, which reads the prompt *and*
the input images (``qwen_text.QWEN25_VL_7B``). Not distilled: 40-50 steps with true
classifier-free guidance (``true_cfg_scale``, active only when a negative prompt is given).

The tiny build keeps the VAE's three downsamplings (scale factor 8, size multiple 16), the 2x2
latent patch, the M-RoPE text layout and a real (tiny) vision tower, so input images go through
the same processor -> vision tokens -> transformer path. The pipeline resizes every input image
to about 1 megapixel for the VAE whatever its size, so the tiny VAE is kept narrow (8 channels,
no residual blocks: the down- and upsampling and the attention mid-block only).
"""

from __future__ import annotations

from typing import Any

from . import qwen_text
from .tiny_build import VAE_GAIN, amplify

NAME = "qwen-image-edit"
PIPELINES = {
    "edit": "QwenImageEditPlusPipeline",
    "inpaint": "QwenImageEditInpaintPipeline",
}

# Qwen/Qwen-Image-Edit-2511 transformer/config.json (transcribed from public copies; the same as
# Qwen-Image's and 2509's plus "zero_cond_t": true; equal to diffusers'
# QwenImageTransformer2DModel defaults otherwise).
TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
    "zero_cond_t": True,
}
# Qwen/Qwen-Image(-Edit-2511) vae/config.json (= diffusers' AutoencoderKLQwenImage defaults).
VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
}
# Qwen/Qwen-Image-Edit-2511 scheduler/scheduler_config.json (as Qwen-Image's).
SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 0.9,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}

# What the benchmark builds at full size: component -> (class, config).
FULL_SIZE: dict[str, tuple[str, dict[str, Any]]] = {
    "transformer": ("QwenImageTransformer2DModel", TRANSFORMER),
    "vae": ("AutoencoderKLQwenImage", VAE),
    "text_encoder": ("Qwen2_5_VLForConditionalGeneration", qwen_text.QWEN25_VL_7B),
}

# Published parameter counts, component -> [(count, source)]: the bf16 checkpoints as the Hub
# (huggingface.co/<repo>) lists them, size / 2 bytes (at most 0.3 % off), and the technical
# report's figure. Checked within 1 % by tests/test_tiny_families.py and
# benchmarks/bench_families.py. The "20B" is the transformer, rounded; the 2511 repo's
# 57.7 GB is the sum of all three.
PUBLISHED: dict[str, list[tuple[float, str]]] = {
    "transformer": [
        (
            40.9e9 / 2,
            "Comfy-Org/Qwen-Image-Edit_ComfyUI: qwen_image_edit_2509_bf16.safetensors, 40.9 GB",
        )
    ],
    "vae": [
        (254e6 / 2, "Qwen/Qwen-Image-Edit/tree/main/vae: 254 MB"),
        (127e6, "Qwen-Image report, arXiv 2508.02324: encoder 54M + decoder 73M"),
    ],
    "text_encoder": [(16.6e9 / 2, "Qwen/Qwen-Image-Edit-2509/tree/main/text_encoder: 16.6 GB")],
}
HEADLINE = 20e9

TINY_Z_DIM = 4
TINY_TEXT_WIDTH = 16


def build_tiny():
    """The tiny ``QwenImageEditPlusPipeline``, every component seeded on its own."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLForConditionalGeneration

    tokenizer = qwen_text.build_tokenizer()
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=TINY_Z_DIM * 4,
        out_channels=TINY_Z_DIM,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TINY_TEXT_WIDTH,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),  # sums to the head width
        zero_cond_t=TRANSFORMER["zero_cond_t"],
    )
    amplify(transformer)
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=TINY_Z_DIM,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=0,  # down/upsampling and the attention mid-block only
        temperal_downsample=VAE["temperal_downsample"],  # three downsamplings: scale factor 8
        latents_mean=[0.0] * TINY_Z_DIM,
        latents_std=[1.0] * TINY_Z_DIM,
    )
    amplify(vae, VAE_GAIN)
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        qwen_text.tiny_qwen25_vl(tokenizer, width=TINY_TEXT_WIDTH)
    )
    return QwenImageEditPlusPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=qwen_text.build_processor(tokenizer),
        transformer=transformer,
    )
