"""The character consistency score, computed the same way for every model family.

Score = cosine similarity in [-1, 1] between the CLIP image embedding of the generated image
and the mean embedding of the character's reference images, both from ONE scoring encoder:
CLIP ViT-H/14 from ``h94/IP-Adapter`` (``models/image_encoder``), the encoder the SDXL
IP-Adapters already load. An SD model with its adapters loaded scores with that same encoder
in place (no second copy); FLUX.2 klein and Qwen-Image-Edit, which read the reference pictures
natively and have no CLIP encoder, load it here, once per process. So a score means the same
for every preset and can be compared across them. The tiny presets share one tiny encoder
(``tiny_adapters.build_image_encoder``: the same seed, so the same weights as the tiny SD
model's adapter encoder), built locally beside them: tests score offline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError
from ..images import to_rgb
from .families.tiny_build import ensure_built
from .hub import hub_reachable

SCORER_REPO = "h94/IP-Adapter"
SCORER_SUBFOLDER = "models/image_encoder"  # CLIP ViT-H/14 with projection, 632M parameters
TINY_SCORER = "tiny-scorer"  # folder beside the tiny models
TINY_SCORER_RECIPE = 1


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A CLIP vision encoder with projection and its image processor."""

    encoder: Any
    processor: Any
    id: str  # encoder_fingerprint: the same weights give the same id

    def embed(self, images: Sequence[Any]):
        """(n, dim) float32 CPU image embeddings: one encoder pass."""
        import torch

        pixels = self.processor([to_rgb(image) for image in images], return_tensors="pt")
        values = pixels.pixel_values.to(device=self.encoder.device, dtype=self.encoder.dtype)
        with torch.inference_mode():
            return self.encoder(values).image_embeds.float().cpu()

    def score(self, image, references) -> float:
        """The consistency of ``image`` with reference embeddings (n, dim) or images."""
        if not hasattr(references, "shape"):
            references = self.embed(references)
        return similarity(self.embed([image])[0], references)


def similarity(embedding, references) -> float:
    """Cosine of ``embedding`` with the mean of ``references`` (n, dim), clipped to [-1, 1]."""
    import torch

    mean = references.float().cpu().mean(dim=0)
    score = torch.nn.functional.cosine_similarity(embedding.float().cpu(), mean, dim=0)
    return max(-1.0, min(1.0, float(score)))


def encoder_fingerprint(encoder) -> str:
    """Identifies an image encoder across processes, devices and dtypes (16 hex digits).

    Hashes the architecture config and the patch-embedding weights rounded to float16, so the
    same checkpoint gives the same id on CPU float32 and GPU float16, and a different
    checkpoint (tiny vs ViT-H, or another seed) a different one.
    """
    import torch

    config = encoder.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        config.pop(volatile, None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    weight = encoder.vision_model.embeddings.patch_embedding.weight.detach()
    digest.update(weight.to("cpu", torch.float16).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


_SCORERS: dict[str, Scorer] = {}
_LOCK = threading.Lock()


def _write_tiny(folder: Path) -> None:
    from .tiny_adapters import build_feature_extractor, build_image_encoder

    build_image_encoder().save_pretrained(folder, safe_serialization=True)
    build_feature_extractor().save_pretrained(folder)


def tiny_scorer_folder(models_dir: Path) -> Path:
    return ensure_built(
        Path(models_dir) / TINY_SCORER, TINY_SCORER, TINY_SCORER_RECIPE, _write_tiny
    )


def _load(source: str, subfolder: str | None, local_only: bool) -> Scorer:
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    kwargs = {"local_files_only": local_only}
    if subfolder:
        kwargs["subfolder"] = subfolder
    encoder = CLIPVisionModelWithProjection.from_pretrained(source, **kwargs).eval()
    try:
        processor = CLIPImageProcessor.from_pretrained(source, **kwargs)
    except OSError:  # the h94 folder has no preprocessor config: CLIP's defaults, 224 px
        processor = CLIPImageProcessor()
    return Scorer(encoder, processor, encoder_fingerprint(encoder))


def scorer_for(preset, models_dir: Path, hub_timeout: float = 10) -> Scorer:
    """The shared scoring encoder for ``preset``: the tiny one for tiny presets, else ViT-H
    from the local cache or the Hub (ModelUnavailableError offline and not cached)."""
    with _LOCK:
        if preset.is_tiny:
            folder = str(tiny_scorer_folder(models_dir))
            if folder not in _SCORERS:
                _SCORERS[folder] = _load(folder, None, local_only=True)
            return _SCORERS[folder]
        if SCORER_REPO not in _SCORERS:
            try:
                _SCORERS[SCORER_REPO] = _load(SCORER_REPO, SCORER_SUBFOLDER, local_only=True)
            except OSError:
                if not hub_reachable(hub_timeout):
                    raise ModelUnavailableError(
                        f"The consistency score needs the image encoder {SCORER_REPO}/"
                        f"{SCORER_SUBFOLDER}, which is not downloaded, and the Hugging Face "
                        "Hub is unreachable."
                    ) from None
                _SCORERS[SCORER_REPO] = _load(SCORER_REPO, SCORER_SUBFOLDER, local_only=False)
        return _SCORERS[SCORER_REPO]
