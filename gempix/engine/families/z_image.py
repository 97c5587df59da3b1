"""Z-Image-Turbo: ``ZImagePipeline``, ``ZImageImg2ImgPipeline``, ``ZImageInpaintPipeline``.

Full size: a single-stream DiT of 30 layers at width 3840 plus 2 noise- and 2 context-refiner
layers (``TRANSFORMER``), the 16-channel FLUX.1-style ``AutoencoderKL`` (``VAE``) and Qwen3-4B,
whose second-to-last hidden state is the caption feature. Distilled to 8 steps at guidance 0
(no classifier-free guidance, so the negative prompt is read only when guidance > 0).

The tiny build keeps the VAE scale factor 8 (size multiple 16), the 2x2 patch, the RoPE axes
layout (``axes_dims`` summing to the head width) and the published ``axes_lens`` so prompts up
to the pipeline's 512 tokens fit as they do in the real model.
"""

from __future__ import annotations

from typing import Any

from . import qwen_text
from .tiny_build import VAE_GAIN, amplify

NAME = "z-image-turbo"
PIPELINES = {
    "text2image": "ZImagePipeline",
    "img2img": "ZImageImg2ImgPipeline",
    "inpaint": "ZImageInpaintPipeline",
}

# Tongyi-MAI/Z-Image-Turbo transformer/config.json (transcribed from public copies of the file,
# which also match diffusers' ZImageTransformer2DModel defaults except axes_lens).
TRANSFORMER: dict[str, Any] = {
    "all_patch_size": (2,),
    "all_f_patch_size": (1,),
    "in_channels": 16,
    "dim": 3840,
    "n_layers": 30,
    "n_refiner_layers": 2,
    "n_heads": 30,
    "n_kv_heads": 30,
    "norm_eps": 1e-5,
    "qk_norm": True,
    "cap_feat_dim": 2560,
    "rope_theta": 256.0,
    "t_scale": 1000.0,
    "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
}
# Tongyi-MAI/Z-Image-Turbo vae/config.json (the FLUX.1 VAE layout).
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": True,
    "force_upcast": True,
}
# Tongyi-MAI/Z-Image-Turbo scheduler/scheduler_config.json: a static shift of 3.
SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}

# What the benchmark builds at full size: component -> (class, config).
FULL_SIZE: dict[str, tuple[str, dict[str, Any]]] = {
    "transformer": ("ZImageTransformer2DModel", TRANSFORMER),
    "vae": ("AutoencoderKL", VAE),
    "text_encoder": ("Qwen3Model", qwen_text.QWEN3_4B),
}

# Published parameter counts, component -> [(count, source)]: the bf16 checkpoints as the Hub
# (huggingface.co/<repo>) lists them, size / 2 bytes (at most 0.3 % off), and the paper's
# figure. Checked within 1 % by tests/test_tiny_families.py and benchmarks/bench_families.py.
# The "6B" of the name is the transformer, rounded.
PUBLISHED: dict[str, list[tuple[float, str]]] = {
    "transformer": [
        (
            12.3e9 / 2,
            "Comfy-Org/z_image_turbo: z_image_turbo_bf16.safetensors, 12.3 GB",
        ),
        (6.15e9, "Z-Image paper, arXiv 2511.22699: the 6.15B S3-DiT"),
    ],
    "vae": [
        (
            168e6 / 2,
            "Tongyi-MAI/Z-Image-Turbo: vae/diffusion_pytorch_model.safetensors, 168 MB",
        )
    ],
    "text_encoder": [(8.05e9 / 2, "Tongyi-MAI/Z-Image-Turbo/tree/main/text_encoder: 8.05 GB")],
}
HEADLINE = 6e9

TINY_LATENT_CHANNELS = 4
TINY_TEXT_WIDTH = 16


def build_tiny():
    """The tiny ``ZImagePipeline``, every component seeded on its own."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Model

    tokenizer = qwen_text.build_tokenizer()
    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(
        all_patch_size=TRANSFORMER["all_patch_size"],
        all_f_patch_size=TRANSFORMER["all_f_patch_size"],
        in_channels=TINY_LATENT_CHANNELS,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=TRANSFORMER["norm_eps"],
        qk_norm=True,
        cap_feat_dim=TINY_TEXT_WIDTH,
        rope_theta=TRANSFORMER["rope_theta"],
        t_scale=TRANSFORMER["t_scale"],
        axes_dims=[8, 4, 4],  # sums to the head width, 32 / 2
        axes_lens=TRANSFORMER["axes_lens"],
    )
    with torch.no_grad():  # allocated with torch.empty: fix them, or two builds differ
        transformer.x_pad_token.fill_(1.0)
        transformer.cap_pad_token.fill_(1.0)
    amplify(transformer)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=VAE["down_block_types"],
        up_block_types=VAE["up_block_types"],
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=TINY_LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=VAE["scaling_factor"],
        shift_factor=VAE["shift_factor"],
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    amplify(vae, VAE_GAIN)
    torch.manual_seed(0)
    text_encoder = Qwen3Model(qwen_text.tiny_qwen3(tokenizer, layers=2, width=TINY_TEXT_WIDTH))
    return ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
