"""IP-Adapter: style reference images and consistent characters.

One loaded pipeline carries up to two IP-Adapters at once, in fixed slot order:

* ``style``: the plain IP-Adapter (one CLIP image embedding -> 4 tokens), driven by a per-block
  scale dict that touches only the UNet's style block (InstantStyle, see ``style_scales``);
* ``character``: the "plus" IP-Adapter (a Resampler over the encoder's penultimate hidden
  states -> 16 tokens), or "plus-face" with ``face=True``, at one scale for the whole UNet.

Adapters are loaded once per pipeline (``ensure_adapters``) and kept; a generation that uses
neither passes zero embeddings with scale 0, which diffusers' attention processor skips, so
turning a character or style on and off never reloads the base model or the adapters.

Reference images are embedded once (``embed_images`` -> ``ReferenceEmbeddings``: the CLIP image
embeddings *and* the penultimate hidden states, from one encoder pass) and can be stored as
bytes (``embeddings_to_bytes``, safetensors, never pickle); a generation with stored
embeddings runs no image-encoder pass. Each embedding records which encoder made it
(``encoder_id``), so a cache built for one model is never fed to another.

Threading: ``ensure_adapters`` takes ``loaded.lock`` itself when it has to load, so call it
*before* entering ``with loaded.lock``. ``set_scales`` mutates the shared pipeline: call it
under ``loaded.lock`` together with the pipeline call. ``embed_images`` and
``consistency_score`` only read the encoder and need no lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError, ValidationError
from ..images import ImageSource, load_image
from . import tiny_adapters

KINDS = ("style", "character")  # slot order of the loaded adapters
MAX_REFERENCES = 4
MAX_STRENGTH = 2.0
EMBEDDINGS_FORMAT = "gempix-reference-embeddings/1"


@dataclasses.dataclass
class AdapterSet:
    """What is loaded into one pipeline: slot order, where from, and the encoder's shape."""

    kinds: tuple[str, ...]  # subset of KINDS, in KINDS order: the set_ip_adapter_scale order
    source: str  # a local folder or a Hub repo id
    face: bool  # the character slot holds the plus-face weights
    encoder_id: str  # fingerprint of the image encoder (see ``encoder_fingerprint``)
    projection_dim: int  # width of image_embeds (plain adapter input)
    hidden_shape: tuple[int, int]  # (tokens, width) of the penultimate hidden states
    uncond_hidden: Any = None  # (1, tokens, width): hidden states of an all-zero image (CFG)

    def slot(self, kind: str) -> int:
        return self.kinds.index(kind)


@dataclasses.dataclass(frozen=True)
class ReferenceEmbeddings:
    """One encoder pass over 1-4 reference images, float32 on the CPU.

    ``image_embeds`` (n, projection_dim) feed the plain (style) adapter and the consistency
    score; ``hidden_states`` (n, tokens, width), the encoder's penultimate layer, feed the plus
    (character) adapter, as diffusers' ``encode_image(output_hidden_states=True)`` does.
    """

    image_embeds: Any
    hidden_states: Any
    encoder: str

    @property
    def count(self) -> int:
        return int(self.image_embeds.shape[0])


# ---------------------------------------------------------------------------------------------
# Validation that needs no model (so a bad request fails before anything loads)


def check_references(sources: Sequence[ImageSource], field: str = "references") -> list:
    """1-4 reference images through ``load_image``: EXIF-upright RGB, size-limited."""
    if isinstance(sources, (str, Path, bytes)) or not isinstance(sources, Sequence):
        sources = [sources]
    if not sources:
        raise ValidationError(f"{field}: give at least one reference image.")
    if len(sources) > MAX_REFERENCES:
        raise ValidationError(
            f"{field}: {len(sources)} images; a character has 1 to {MAX_REFERENCES}."
        )
    return [load_image(source, f"{field}[{index}]") for index, source in enumerate(sources)]


def check_strength(value: Any, field: str) -> float:
    """A finite number in [0, MAX_STRENGTH]; 0 switches the adapter off."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{field}: expected a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= MAX_STRENGTH:
        raise ValidationError(f"{field}: {value} is outside [0, {MAX_STRENGTH}].")
    return value


# ---------------------------------------------------------------------------------------------
# Loading


def _adapter_state(loaded) -> AdapterSet | None:
    return getattr(loaded, "adapters", None)


def _require(loaded) -> AdapterSet:
    state = _adapter_state(loaded)
    if state is None:
        raise RuntimeError("No IP-Adapter is loaded: call ensure_adapters(loaded, kinds) first.")
    return state


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(kinds)
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"adapter kinds must be a non-empty subset of {KINDS}, got {kinds}")
    return kinds


def _satisfies(state: AdapterSet | None, kinds: tuple[str, ...], face: bool) -> bool:
    if state is None or not set(kinds) <= set(state.kinds):
        return False
    return "character" not in kinds or state.face == face


def local_adapter_folder(loaded) -> Path | None:
    """The model folder when it carries GemPix-built adapters (tiny, benchmark models)."""
    name = getattr(loaded.pipe, "name_or_path", None) or ""
    folder = Path(name)
    if name and tiny_adapters.is_built(folder):
        return folder
    return None


def _hub_files(adapters) -> list[tuple[str, str]]:
    encoder = adapters.encoder_subfolder
    return [
        (adapters.subfolder, adapters.style),
        (adapters.subfolder, adapters.plus),
        (adapters.subfolder, adapters.plus_face),
        (encoder, "config.json"),
        (encoder, "model.safetensors"),
    ]


def adapters_downloaded(adapters) -> bool:
    """True when every published file a preset's adapters need is in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    return all(
        isinstance(try_to_load_from_cache(adapters.repo, f"{sub}/{name}"), str)
        for sub, name in _hub_files(adapters)
    )


def download_adapters(preset, hub_timeout: float = 10.0) -> list[str]:
    """Fetch a preset's IP-Adapter files and image encoder into the HF cache (for offline use)."""
    from huggingface_hub import hf_hub_download

    from .models import hub_reachable

    if preset.adapters is None:
        return []
    if not hub_reachable(hub_timeout):
        raise ModelUnavailableError(
            f"Cannot download the IP-Adapter files for {preset.name!r}: the Hugging Face Hub "
            "is unreachable from this machine."
        )
    return [
        hf_hub_download(preset.adapters.repo, f"{sub}/{name}")
        for sub, name in _hub_files(preset.adapters)
    ]


def _load_arguments(loaded, kinds: tuple[str, ...], face: bool, hub_timeout: float) -> dict:
    """The ``load_ip_adapter`` keyword arguments for this model, applying the offline rules."""
    folder = local_adapter_folder(loaded)
    if folder is not None:
        marker = json.loads((folder / tiny_adapters.FOLDER / tiny_adapters.MARKER).read_text())
        files = marker["weights"]
        character = files["plus_face" if face else "plus"]
        weights = [files["style"] if kind == "style" else character for kind in kinds]
        return dict(
            pretrained_model_name_or_path_or_dict=str(folder),
            subfolder=tiny_adapters.FOLDER,
            weight_name=weights,
            image_encoder_folder=marker["image_encoder"],
            local_files_only=True,
        )
    preset = loaded.preset
    adapters = preset.adapters
    if adapters is None:
        raise ValidationError(
            f"Style references and characters need an IP-Adapter, and none is published for "
            f"model {preset.name!r}. Choose a model that has one (e.g. sdxl-turbo) or tiny."
        )
    from .models import download_hint, hub_reachable

    local_only = adapters_downloaded(adapters)
    if not local_only and not hub_reachable(hub_timeout):
        raise ModelUnavailableError(
            f"The IP-Adapter files for {preset.name!r} ({adapters.repo}) are not downloaded and "
            f"the Hugging Face Hub is unreachable. {download_hint(preset.name)}"
        )
    character = adapters.plus_face if face else adapters.plus
    weights = [adapters.style if kind == "style" else character for kind in kinds]
    return dict(
        pretrained_model_name_or_path_or_dict=adapters.repo,
        subfolder=adapters.subfolder,
        weight_name=weights,
        # Contains a "/": diffusers reads it as a path in the repo, not under ``subfolder``.
        image_encoder_folder=adapters.encoder_subfolder,
        local_files_only=local_only,
    )


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


def _pixel_values(loaded, images: list):
    pixels = loaded.pipe.feature_extractor(images, return_tensors="pt").pixel_values
    encoder = loaded.pipe.image_encoder
    return pixels.to(device=encoder.device, dtype=encoder.dtype)


def _describe(loaded, kinds: tuple[str, ...], face: bool, source: str) -> AdapterSet:
    import torch

    pipe = loaded.pipe
    encoder = pipe.image_encoder
    size = pipe.feature_extractor.crop_size["height"]
    zeros = torch.zeros(1, 3, size, size, device=encoder.device, dtype=encoder.dtype)
    with torch.inference_mode():
        out = encoder(zeros, output_hidden_states=True)
    hidden = out.hidden_states[-2].float().cpu()
    return AdapterSet(
        kinds=kinds,
        source=source,
        face=face,
        encoder_id=encoder_fingerprint(encoder),
        projection_dim=int(out.image_embeds.shape[-1]),
        hidden_shape=(int(hidden.shape[1]), int(hidden.shape[2])),
        # diffusers' negative for plus adapters: the encoder's output for a zero image. Computed
        # here, once per load, so no generation ever runs the encoder for it.
        uncond_hidden=hidden if "character" in kinds else None,
    )


def ensure_adapters(
    loaded, kinds: Iterable[str] = KINDS, *, face: bool = False, hub_timeout: float = 10.0
) -> AdapterSet:
    """Load the IP-Adapter(s) for ``kinds`` into ``loaded.pipe`` unless already there.

    Loaded adapters are kept: asking again for kinds already loaded returns at once (no lock,
    no I/O). Asking for a kind not yet loaded (or for plus-face instead of plus) reloads the
    adapters only, never the base model, and keeps every kind loaded before; ask for both
    kinds up front to load once. Real presets use their published files (``preset.adapters``)
    from the local HF cache, or the Hub when reachable; offline and not downloaded is a
    ``ModelUnavailableError`` at once. A model with no published adapter (SD 2.1 / SD-Turbo,
    FLUX) is a ``ValidationError``. ``tiny`` (or any folder with GemPix-built ``ip_adapter/``)
    loads its local files through the same ``load_ip_adapter`` call.
    """
    kinds = _check_kinds(kinds)
    if _satisfies(_adapter_state(loaded), kinds, face):
        return _adapter_state(loaded)
    with loaded.lock:
        current = _adapter_state(loaded)
        if _satisfies(current, kinds, face):
            return current
        keep = current.kinds if current is not None else ()
        wanted = tuple(kind for kind in KINDS if kind in kinds or kind in keep)
        if current is not None and "character" in keep and "character" not in kinds:
            face = current.face
        arguments = _load_arguments(loaded, wanted, face, hub_timeout)
        folder = local_adapter_folder(loaded)
        if folder is not None and getattr(loaded.pipe, "feature_extractor", 0) is None:
            from transformers import CLIPImageProcessor

            # GemPix-built encoders ship their preprocessor config: registered before loading,
            # diffusers keeps it. For Hub encoders it builds the standard CLIP one itself.
            processor = folder / tiny_adapters.FOLDER / tiny_adapters.ENCODER_FOLDER
            loaded.pipe.register_modules(
                feature_extractor=CLIPImageProcessor.from_pretrained(processor)
            )
        try:
            loaded.pipe.load_ip_adapter(**arguments)
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelUnavailableError(
                f"Could not load the IP-Adapter for {loaded.preset.name!r}: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from None
        state = _describe(loaded, wanted, face, arguments["pretrained_model_name_or_path_or_dict"])
        loaded.adapters = state
        return state


# ---------------------------------------------------------------------------------------------
# Scales


def _unet_config(unet) -> Any:
    return getattr(unet, "config", unet)


def _get(config, key: str):
    return config[key] if isinstance(config, dict) else getattr(config, key)


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
    config = _unet_config(unet)
    up_types = list(_get(config, "up_block_types"))
    block = next((i for i, name in enumerate(up_types) if "CrossAttn" in name), None)
    if block is None:
        raise ValueError("this UNet has no cross-attention up block to carry a style")
    if block > 0:
        return {"up": {f"block_{block}": strength}}
    per_block = _get(config, "layers_per_block")
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
    state = _require(loaded)
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


# ---------------------------------------------------------------------------------------------
# Embeddings


def embed_images(loaded, images: Sequence[ImageSource]) -> ReferenceEmbeddings:
    """Embed 1-4 reference images with the pipeline's image encoder: one encoder pass."""
    import torch

    state = _require(loaded)
    pictures = check_references(images)
    with torch.inference_mode():
        out = loaded.pipe.image_encoder(_pixel_values(loaded, pictures), output_hidden_states=True)
    return ReferenceEmbeddings(
        image_embeds=out.image_embeds.float().cpu(),
        hidden_states=out.hidden_states[-2].float().cpu(),
        encoder=state.encoder_id,
    )


def embeddings_match(loaded, embeddings: ReferenceEmbeddings) -> bool:
    """True when ``embeddings`` were made by this pipeline's image encoder (cache still valid)."""
    state = _adapter_state(loaded)
    return state is not None and embeddings.encoder == state.encoder_id


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

    state = _require(loaded)
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
    """The image conditioning of one generation: embeddings and the strength of each slot."""

    style: ReferenceEmbeddings | None = None
    style_strength: float = 0.0
    character: ReferenceEmbeddings | None = None
    character_strength: float = 0.0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in KINDS if getattr(self, kind) is not None)


def pipeline_kwargs(loaded, conditioning: Conditioning | None, guidance: float) -> dict:
    """What a pipeline call adds for the adapters: nothing while none is loaded; otherwise the
    scales are set (a slot without a reference at 0) and the embeddings passed, as every call
    of a pipeline with adapters must. Call under ``loaded.lock``, then call the pipeline."""
    if _adapter_state(loaded) is None:
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


def consistency_score(loaded, output_image, reference_embeddings) -> float:
    """Cosine similarity in [-1, 1] between the output's CLIP image embedding and the mean of
    the references' (``ReferenceEmbeddings`` or an (n, dim) tensor): one encoder pass."""
    import torch

    from ..images import to_rgb

    _require(loaded)
    references = getattr(reference_embeddings, "image_embeds", reference_embeddings)
    with torch.inference_mode():
        pixels = _pixel_values(loaded, [to_rgb(output_image)])
        embedding = loaded.pipe.image_encoder(pixels).image_embeds[0].float().cpu()
    mean = references.float().cpu().mean(dim=0)
    score = torch.nn.functional.cosine_similarity(embedding, mean, dim=0)
    return max(-1.0, min(1.0, float(score)))


# ---------------------------------------------------------------------------------------------
# Serialisation (the store keeps bytes; safetensors, never pickle)


def embeddings_to_bytes(embeddings: ReferenceEmbeddings) -> bytes:
    from safetensors.torch import save

    tensors = {
        "image_embeds": embeddings.image_embeds.float().contiguous().cpu(),
        "hidden_states": embeddings.hidden_states.float().contiguous().cpu(),
    }
    return save(tensors, metadata={"format": EMBEDDINGS_FORMAT, "encoder": embeddings.encoder})


def _metadata(data: bytes) -> dict:
    if len(data) < 8:
        raise ValueError("too short")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("header length out of range")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def embeddings_from_bytes(data: bytes) -> ReferenceEmbeddings:
    """Inverse of ``embeddings_to_bytes``; anything else is a ``ValidationError``."""
    from safetensors.torch import load

    try:
        metadata = _metadata(data)
        if metadata.get("format") != EMBEDDINGS_FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        tensors = load(data)
        image_embeds, hidden = tensors["image_embeds"], tensors["hidden_states"]
        if image_embeds.ndim != 2 or hidden.ndim != 3 or hidden.shape[0] != image_embeds.shape[0]:
            raise ValueError("unexpected shapes")
    except Exception as error:  # safetensors raises its own error types too
        raise ValidationError(f"embeddings: not GemPix reference embeddings ({error}).") from None
    return ReferenceEmbeddings(image_embeds, hidden, metadata.get("encoder", ""))
