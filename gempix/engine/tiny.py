"""The ``tiny`` model: a Stable-Diffusion-architecture pipeline with small random weights.

It exists so tests, CI and an offline demo exercise the real code path (``from_pretrained``,
schedulers, VAE decode, PNG metadata) without downloading anything. Every component is built
from a fixed seed, so two builds are byte-identical, and saved as a normal diffusers folder
that is then loaded exactly like a real model, with its own Real-ESRGAN, IP-Adapters
(``tiny_adapters``) and live-preview decoder (``previews.build_tiny_taesd``) beside it. Its
tokenizer is written here too: a byte-level BPE vocabulary with no merges (one token per
character), so nothing comes from the Hub.

It draws noise, not pictures. The UI labels it as such.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from pathlib import Path

from .esrgan import TINY_ESRGAN_FILE, build_tiny_esrgan
from .previews import TINY_TAESD_FOLDER, build_tiny_taesd
from .tiny_adapters import build_tiny_adapters

# Bump when the recipe changes: a folder built by an older recipe is rebuilt on next use.
RECIPE_VERSION = 4
MARKER = "gempix-tiny.json"
CROSS_ATTENTION_DIM = 32
NATIVE_SIZE = 64


def _byte_alphabet() -> list[str]:
    """GPT-2/CLIP's reversible byte-to-unicode table, as byte-level BPE vocabularies use it."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def build_tokenizer():
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in alphabet:
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_components() -> dict:
    """Every component of the tiny pipeline, each seeded on its own like diffusers' tests."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tokenizer()

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=NATIVE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        # Four levels give the real SD scale factor of 8, so size rules match real models.
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=NATIVE_SIZE,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=CROSS_ATTENTION_DIM,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
    }


def build_pipeline():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **build_components(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def is_built(folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("recipe") == RECIPE_VERSION
    except (OSError, ValueError):
        return False


def ensure_tiny(folder: Path) -> Path:
    """Build the tiny model into ``folder`` unless an up-to-date build is already there.

    Several processes may ask at once (batch ranks, a test run beside the app): a lock file
    makes one build while the others wait, and the build is written to a temp folder and
    moved into place, so nobody ever loads a half-written model.
    """
    folder = Path(folder)
    if is_built(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(folder):  # built by whoever held the lock before us
            return folder
        staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
        try:
            build_pipeline().save_pretrained(staging, safe_serialization=True)
            build_tiny_esrgan(staging / TINY_ESRGAN_FILE)
            build_tiny_taesd(staging / TINY_TAESD_FOLDER)
            build_tiny_adapters(staging)
            (staging / MARKER).write_text(json.dumps({"recipe": RECIPE_VERSION}))
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder
