"""Putting the IP-Adapters into a loaded pipeline once (``ensure_adapters``), offline rules too."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import ModelUnavailableError, ValidationError
from .. import tiny_adapters
from ..consistency import encoder_fingerprint
from ..hub import cached_file, hub_reachable
from .limits import KINDS


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


def adapter_set(loaded) -> AdapterSet | None:
    return getattr(loaded, "adapters", None)


def require_adapters(loaded) -> AdapterSet:
    state = adapter_set(loaded)
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


def _hub_paths(adapters) -> list[str]:
    """The files a preset's adapters need in their Hub repo: three adapters and the encoder."""
    encoder = adapters.encoder_subfolder
    return [
        f"{adapters.subfolder}/{adapters.style}",
        f"{adapters.subfolder}/{adapters.plus}",
        f"{adapters.subfolder}/{adapters.plus_face}",
        f"{encoder}/config.json",
        f"{encoder}/model.safetensors",
    ]


def adapters_downloaded(adapters) -> bool:
    """True when every published file a preset's adapters need is in the local HF cache."""
    return all(cached_file(adapters.repo, path) for path in _hub_paths(adapters))


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
            f"model {preset.name!r}. Choose a model that has one (e.g. sdxl-turbo) or tiny, "
            "or flux2-klein / qwen-image-edit, which read reference images themselves."
        )
    local_only = adapters_downloaded(adapters)
    if not local_only and not hub_reachable(hub_timeout):
        raise ModelUnavailableError(
            f"The IP-Adapter files for {preset.name!r} ({adapters.repo}) are not downloaded and "
            f"the Hugging Face Hub is unreachable. Download them once while online with: "
            f"hf download {adapters.repo} {' '.join(_hub_paths(adapters))}"
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
    if _satisfies(adapter_set(loaded), kinds, face):
        return adapter_set(loaded)
    with loaded.lock:
        current = adapter_set(loaded)
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
