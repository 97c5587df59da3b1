"""Random IP-Adapters and a tiny CLIP image encoder, built in code for a saved UNet.

``build_tiny_adapters(folder)`` reads ``folder/unet/config.json`` (the tiny model's, or any
SD-family UNet's, e.g. the full-size random-weight benchmark model) and writes, next to it::

    folder/ip_adapter/
        gempix-adapters.json               what is here (read by adapters.ensure_adapters)
        ip-adapter_gempix.safetensors      "plain" adapter (ImageProjection): style references
        ip-adapter-plus_gempix.safetensors "plus" adapter (Resampler on hidden states): characters
        ip-adapter-plus-face_gempix.safetensors   same shape, other seed: characters, face mode
        image_encoder/                     CLIPVisionModelWithProjection + preprocessor config

The weight files use the published h94/IP-Adapter key layout (``image_proj.*`` and
``ip_adapter.<n>.to_k_ip.weight``), so they load through the real
``pipe.load_ip_adapter(folder, subfolder="ip_adapter", weight_name=..., image_encoder_folder=
"image_encoder")`` path, exactly like the Hub files do. Every tensor comes from a fixed seed:
two builds are byte-identical. Random weights: the adapters change pixels, they do not
transfer any style or identity.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

ADAPTER_RECIPE = 1
FOLDER = "ip_adapter"
MARKER = "gempix-adapters.json"
ENCODER_FOLDER = "image_encoder"
WEIGHTS = {
    "style": "ip-adapter_gempix.safetensors",
    "plus": "ip-adapter-plus_gempix.safetensors",
    "plus_face": "ip-adapter-plus-face_gempix.safetensors",
}
SEEDS = {"encoder": 0, "style": 1, "plus": 2, "plus_face": 3}

# The tiny image encoder: 32x32 input, 8x8 patches -> 16 patches + CLS = 17 tokens of width 32.
ENCODER_IMAGE_SIZE = 32
ENCODER_PATCH = 8
ENCODER_WIDTH = 32
ENCODER_LAYERS = 2
PROJECTION_DIM = 32  # image_embeds width: what the plain adapter's ImageProjection reads
PLAIN_TOKENS = 4  # fixed by diffusers' converter for plain IP-Adapters
PLUS_QUERIES = 16  # the published plus adapters use 16 queries too
PLUS_WIDTH = 32  # Resampler latent width (the published ones use 768 / 1280)
PLUS_HEADS = 1  # diffusers derives heads as to_q.rows // 64, so dim_head is 64


def build_image_encoder():
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(SEEDS["encoder"])
    return CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=ENCODER_WIDTH,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=ENCODER_LAYERS,
            image_size=ENCODER_IMAGE_SIZE,
            patch_size=ENCODER_PATCH,
            projection_dim=PROJECTION_DIM,
            layer_norm_eps=1e-05,
        )
    )


def build_feature_extractor():
    from transformers import CLIPImageProcessor

    # What diffusers' load_ip_adapter would create for this encoder; saved so it is explicit.
    return CLIPImageProcessor(size=ENCODER_IMAGE_SIZE, crop_size=ENCODER_IMAGE_SIZE)


def _meta_unet(unet_config: dict):
    """The UNet's module tree without weights: enough to enumerate its attention processors."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel.from_config(unet_config)


def _processor_keys(unet) -> list[tuple[int, int]]:
    """(key id, hidden size) per cross-attention processor, numbered as diffusers reads them.

    Mirrors ``UNet2DConditionLoadersMixin._convert_ip_adapter_attn_to_diffusers``: processors
    are walked in ``unet.attn_processors`` order, self-attention ones skipped, and the
    cross-attention ones take ids 1, 3, 5, ... (the original repo's odd indices).
    """
    channels = list(unet.config.block_out_channels)
    keys, key_id = [], 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor") or "motion_modules" in name:
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        keys.append((key_id, hidden))
        key_id += 2
    return keys


def _ip_layers(unet, cross_attention_dim: int) -> dict:
    import torch
    from torch import nn

    tensors = {}
    for key_id, hidden in _processor_keys(unet):
        for name in ("to_k_ip", "to_v_ip"):
            layer = nn.Linear(cross_attention_dim, hidden, bias=False)
            tensors[f"ip_adapter.{key_id}.{name}.weight"] = layer.weight.detach().clone()
    return {key: value.to(torch.float32).contiguous() for key, value in tensors.items()}


def _plain_projection(cross_attention_dim: int) -> dict:
    from diffusers.models.embeddings import ImageProjection

    module = ImageProjection(
        image_embed_dim=PROJECTION_DIM,
        cross_attention_dim=cross_attention_dim,
        num_image_text_embeds=PLAIN_TOKENS,
    )
    # Inverse of diffusers' converter (key.replace("proj", "image_embeds")).
    return {
        f"image_proj.{key.replace('image_embeds', 'proj')}": value.detach().clone()
        for key, value in module.state_dict().items()
    }


def _resampler_key(key: str, value, out: dict) -> None:
    """Diffusers' IPAdapterPlusImageProjection names -> the original Resampler's names."""
    parts = key.split(".")
    if parts[0] != "layers":
        out[key] = value
        return
    index, rest = parts[1], ".".join(parts[2:])
    prefix = f"layers.{index}"
    if rest.startswith("ln0."):
        out[f"{prefix}.0.norm1.{rest[4:]}"] = value
    elif rest.startswith("ln1."):
        out[f"{prefix}.0.norm2.{rest[4:]}"] = value
    elif rest == "attn.to_q.weight":
        out[f"{prefix}.0.to_q.weight"] = value
    elif rest in ("attn.to_k.weight", "attn.to_v.weight"):
        out.setdefault(f"{prefix}.0.to_kv.weight", {})[rest.split(".")[1]] = value
    elif rest == "attn.to_out.0.weight":
        out[f"{prefix}.0.to_out.weight"] = value
    elif rest.startswith("ff.0."):
        out[f"{prefix}.1.0.{rest[5:]}"] = value
    elif rest == "ff.1.net.0.proj.weight":
        out[f"{prefix}.1.1.weight"] = value
    elif rest == "ff.1.net.2.weight":
        out[f"{prefix}.1.3.weight"] = value
    else:
        raise ValueError(f"unexpected Resampler parameter {key}")


def _plus_projection(cross_attention_dim: int) -> dict:
    import torch
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    module = IPAdapterPlusImageProjection(
        embed_dims=ENCODER_WIDTH,
        output_dims=cross_attention_dim,
        hidden_dims=PLUS_WIDTH,
        heads=PLUS_HEADS,
        num_queries=PLUS_QUERIES,
    )
    original: dict = {}
    for key, value in module.state_dict().items():
        _resampler_key(key, value.detach().clone(), original)
    for key, value in list(original.items()):
        if isinstance(value, dict):  # to_k and to_v are one to_kv matrix in the original
            original[key] = torch.cat([value["to_k"], value["to_v"]], dim=0)
    return {f"image_proj.{key}": value for key, value in original.items()}


def build_adapter_tensors(kind: str, unet) -> dict:
    """All tensors of one adapter file ("style", "plus" or "plus_face") for ``unet``."""
    import torch

    cross = unet.config.cross_attention_dim
    torch.manual_seed(SEEDS[kind])
    projection = _plain_projection(cross) if kind == "style" else _plus_projection(cross)
    tensors = {**projection, **_ip_layers(unet, cross)}
    return {key: value.to(torch.float32).contiguous() for key, value in sorted(tensors.items())}


def is_built(folder: Path) -> bool:
    marker = Path(folder) / FOLDER / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("recipe") == ADAPTER_RECIPE
    except (OSError, ValueError):
        return False


def build_tiny_adapters(folder: Path) -> Path:
    """Write ``folder/ip_adapter/`` for the UNet saved in ``folder/unet``; returns that path.

    Built in a temp folder beside it and moved into place, so a crash never leaves a partial
    adapter folder behind.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    unet = _meta_unet(unet_config)
    target = folder / FOLDER
    staging = Path(tempfile.mkdtemp(prefix=".ip-adapter-", dir=folder))
    try:
        encoder = build_image_encoder()
        encoder.save_pretrained(staging / ENCODER_FOLDER, safe_serialization=True)
        build_feature_extractor().save_pretrained(staging / ENCODER_FOLDER)
        for kind, filename in WEIGHTS.items():
            save_file(build_adapter_tensors(kind, unet), staging / filename, {"format": "pt"})
        marker = {
            "recipe": ADAPTER_RECIPE,
            "weights": WEIGHTS,
            "image_encoder": ENCODER_FOLDER,
            "note": "Random weights built by GemPix: they change pixels, not style or identity.",
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_tiny_adapters(folder: Path) -> Path:
    """``build_tiny_adapters`` unless an up-to-date build is already in ``folder``."""
    if is_built(folder):
        return Path(folder) / FOLDER
    return build_tiny_adapters(folder)
