"""Helpers shared by the benchmarks: side-by-side timing and full-size random-weight models.

Benchmarks report ratios measured in one run, interleaved, because the machines are shared
and noisy; absolute numbers are printed for context only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def interleaved(runs: int, **candidates: Callable[[], object]) -> dict[str, float]:
    """Median seconds of each candidate, run alternately so noise hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, call in candidates.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def sd_turbo_unet():
    """SD-Turbo's UNet (SD 2.1, 865M parameters) with random weights, in memory."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )


def build_sd_turbo_architecture(folder: Path) -> Path:
    """SD-Turbo's architecture (SD 2.1: UNet 865M, ViT-H text encoder, SD VAE), random weights.

    Saved as a normal diffusers folder so GemPix loads it through ``from_pretrained`` like
    the real model. The tokenizer is GemPix's local byte-level one (nothing is downloaded).
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    from gempix.engine.tiny import build_tokenizer

    if (folder / "model_index.json").is_file():
        return folder
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    unet = sd_turbo_unet()
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            projection_dim=1024,
            hidden_act="gelu",
            vocab_size=len(tokenizer),
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
