"""Memory modes (``--memory``, docs/performance.md): what a model needs in each, and applying one.

``high``: all on the device; ``balanced``: one component at a time; ``low``: one layer at a time;
``auto``: the first whose need, times ``HEADROOM``, fits the free memory (``advise_mode``). On a
CPU the weights never move; ``balanced`` and ``low`` still bound the working memory.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..errors import ModelUnavailableError
from .pipestate import state_of
from .runtime import free_device_bytes

log = logging.getLogger("gempix.memory")

MEMORY_MODES = ("auto", "high", "balanced", "low")
CONCRETE_MODES = ("high", "balanced", "low")  # the order auto tries them in
GiB = 1024**3

# auto picks a mode only when free >= need * HEADROOM: 20 % for allocator fragmentation, the
# CUDA context and whatever else the card is running. An explicitly chosen mode is refused
# only when free < need.
HEADROOM = 1.2
# When only the high-mode need is known (a bare number), the other modes are estimated as
# these shares of it (measured from the SD 2.1, SDXL and FLUX component sizes: the denoiser is
# 66-74 % of the weights; one layer is well under 1 %, working memory dominates in low).
BALANCED_SHARE = 0.75
LOW_SHARE = 0.15

# Working memory (activations), per output pixel of one image at a 2-byte dtype; estimates
# from published figures, not GPU-measured here: with the base, 1.25 GiB for a 512x512 image,
# 4.25 GiB at 1024x1024 without tiling.
UNET_BYTES_PER_PIXEL = 1024
VAE_BYTES_PER_PIXEL = 3072
VAE_TILE_PIXELS = 512 * 512  # diffusers decodes tiles of at most 512 px (SD VAEs)
BASE_WORKING_BYTES = 256 * 1024**2  # CUDA context, cuDNN/cuBLAS workspaces, scheduler state

# Parameter counts for presets, before a pipeline exists: (all weights, the largest component,
# the largest single layer). From the published configs; the tiny model is measured in tests.
PRESET_PARAMS: dict[str, tuple[int, int, int]] = {
    "sd": (1_300_000_000, 866_000_000, 14_000_000),  # SD 2.1 / SD-Turbo
    "sdxl": (3_470_000_000, 2_567_000_000, 26_000_000),  # SDXL / SDXL-Turbo
    "flux": (16_870_000_000, 11_900_000_000, 151_000_000),  # FLUX.1 + T5-XXL
    "custom": (1_070_000_000, 860_000_000, 14_000_000),  # assume SD 1.5 size
    # Counted on the meta device from the published configs (gempix/engine/families, checked
    # against the Hub's checkpoints by tests/test_tiny_families.py); the largest component is
    # klein's Qwen3-4B text encoder, the others' transformer; the largest layer is the text
    # encoder's token embedding.
    "flux2-klein": (7_982_059_172, 4_022_468_224, 388_956_160),
    "z-image-turbo": (10_261_196_643, 6_154_908_736, 388_956_160),
    "qwen-image-edit": (28_849_460_443, 20_430_401_088, 544_997_376),
    "tiny": (600_000, 300_000, 20_000),
}


@dataclasses.dataclass(frozen=True)
class MemoryNeeds:
    """Estimated peak device bytes to generate one native-size image in each mode."""

    high: int
    balanced: int
    low: int

    def __getitem__(self, mode: str) -> int:
        if mode not in CONCRETE_MODES:
            raise KeyError(mode)
        return getattr(self, mode)

    @classmethod
    def from_high(cls, needed: int) -> MemoryNeeds:
        """Needs of every mode from the high-mode need alone (documented shares)."""
        return cls(int(needed), int(needed * BALANCED_SHARE), int(needed * LOW_SHARE))


def working_bytes(
    width: int, height: int, batch: int = 1, itemsize: int = 2, mode: str = "high"
) -> int:
    """Estimated activation memory for one call at this size (see the constants above)."""
    pixels = width * height
    unet = UNET_BYTES_PER_PIXEL * pixels * batch
    if mode == "high":
        vae = VAE_BYTES_PER_PIXEL * pixels * batch
    else:  # tiling caps the decoded area, slicing decodes one image at a time
        vae = VAE_BYTES_PER_PIXEL * min(pixels, VAE_TILE_PIXELS)
    if mode == "low":  # attention slicing
        unet //= 2
    return BASE_WORKING_BYTES + (unet + vae) * itemsize // 2


def _itemsize(dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size()


def _bytes(tensors, itemsize: int | None) -> int:
    """Bytes of ``tensors``, floating-point ones counted at ``itemsize`` when given."""
    return sum(
        t.numel() * (itemsize if itemsize and t.is_floating_point() else t.element_size())
        for t in tensors
    )


def _largest_layer_bytes(module, itemsize: int | None) -> int:
    return max(
        _bytes((*sub.parameters(recurse=False), *sub.buffers(recurse=False)), itemsize)
        for sub in module.modules()
    )


def torch_modules(pipe) -> dict[str, Any]:
    """The ``torch.nn.Module`` components of a pipeline, by name."""
    import torch

    return {
        name: part
        for name, part in getattr(pipe, "components", {}).items()
        if isinstance(part, torch.nn.Module)
    }


def _sizes(pipe_or_preset, itemsize: int | None) -> tuple[int, int, int, int, tuple[int, int]]:
    """(weights, largest component, largest layer, compute itemsize, native size) in bytes."""
    if hasattr(pipe_or_preset, "components"):
        modules = torch_modules(pipe_or_preset)
        sizes = [_bytes((*m.parameters(), *m.buffers()), itemsize) for m in modules.values()]
        layer = max((_largest_layer_bytes(m, itemsize) for m in modules.values()), default=0)
        if itemsize is None:
            denoiser = modules.get("unet") or modules.get("transformer")
            itemsize = next(denoiser.parameters()).element_size() if denoiser is not None else 4
        weights, largest = sum(sizes), max(sizes, default=0)
        return weights, largest, layer, itemsize, _native_size(pipe_or_preset)
    preset = pipe_or_preset
    family = "tiny" if preset.is_tiny else preset.family
    params = PRESET_PARAMS.get(family, PRESET_PARAMS["custom"])
    itemsize = itemsize or 2
    weights, largest, layer = (count * itemsize for count in params)
    return weights, largest, layer, itemsize, preset.native


def estimate_needs(
    pipe_or_preset,
    dtype=None,
    device: str = "cuda",
    width: int | None = None,
    height: int | None = None,
) -> MemoryNeeds:
    """Per-mode peak memory on ``device`` for one image, from a pipeline or from a preset.

    From a pipeline the weights are counted exactly (at ``dtype`` when given, else as
    loaded); from a preset, ``PRESET_PARAMS`` of its family at ``dtype`` (default 2 bytes).
    On an accelerator: high = all weights + working memory; balanced = the largest component
    + tiled working memory; low = the largest layer + tiled, attention-sliced working memory.
    On a CPU the weights stay resident in every mode; only the working memory shrinks.
    """
    itemsize = _itemsize(dtype) if dtype is not None else None
    weights, largest, layer, itemsize, native = _sizes(pipe_or_preset, itemsize)
    w, h = width or native[0], height or native[1]
    work = {mode: working_bytes(w, h, 1, itemsize, mode) for mode in CONCRETE_MODES}
    if device.split(":")[0] == "cpu":
        largest = layer = weights
    return MemoryNeeds(
        high=weights + work["high"],
        balanced=largest + work["balanced"],
        low=layer + work["low"],
    )


def _native_size(pipe) -> tuple[int, int]:
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    scale = getattr(pipe, "vae_scale_factor", 8)
    sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, int):
        return sample * scale, sample * scale
    return 512, 512


def advise_mode(free_bytes: int, needed_bytes: int | MemoryNeeds, device: str) -> str:
    """The mode ``auto`` picks: the first of high, balanced, low with need * HEADROOM <= free.

    ``needed_bytes`` is a full ``MemoryNeeds`` or the high-mode need alone. With a bare number
    on an accelerator, balanced and low need ``BALANCED_SHARE`` and ``LOW_SHARE`` of it; on a
    CPU (weights never move) every mode is taken to need the whole number. When nothing fits
    the answer is ``low``, the mode that needs least; ``check_fits`` then refuses with the
    numbers.
    """
    if isinstance(needed_bytes, MemoryNeeds):
        needs = needed_bytes
    elif device.split(":")[0] == "cpu":
        needs = MemoryNeeds(int(needed_bytes), int(needed_bytes), int(needed_bytes))
    else:
        needs = MemoryNeeds.from_high(needed_bytes)
    for mode in CONCRETE_MODES:
        if needs[mode] * HEADROOM <= free_bytes:
            return mode
    return "low"


def gib(value: float) -> str:
    return f"{value / GiB:.1f} GiB"


def check_fits(
    mode: str, free_bytes: int, needs: MemoryNeeds, device: str, name: str = "The model"
) -> None:
    """Refuse a mode that cannot fit, with needed vs free and the mode that would fit."""
    if needs[mode] <= free_bytes:
        return
    message = (
        f"{name} needs about {gib(needs[mode])} of {device} memory in {mode!r} memory mode, "
        f"but only {gib(free_bytes)} is free."
    )
    fitting = [m for m in CONCRETE_MODES if needs[m] <= free_bytes]
    if fitting:
        best = fitting[0]
        message += f" Use --memory {best} (needs about {gib(needs[best])})."
    else:
        message += (
            f" No memory mode fits: even 'low' needs about {gib(needs['low'])}. "
            "Free some memory, pick a smaller model, or generate smaller images."
        )
    raise ModelUnavailableError(message)


MODE_WORDS = {
    "high": "all on the device",
    "balanced": "one component at a time (model offload)",
    "low": "one layer at a time (sequential offload, slow)",
}


def preset_needs(preset, device: str, dtype=None) -> MemoryNeeds:
    """What a preset needs in each mode before anything is loaded (its published dtype when
    it has one, else ``dtype``, else 2 bytes on an accelerator and 4 on a CPU)."""
    import torch

    if preset.dtype and not preset.is_tiny:
        dtype = getattr(torch, preset.dtype)
    elif dtype is None:
        dtype = torch.float32 if device.split(":")[0] == "cpu" else torch.float16
    return estimate_needs(preset, dtype=dtype, device=device)


def advice(preset, device: str, free_bytes: int, dtype=None) -> str:
    """One line with the numbers: each mode's need, what is free, and what ``auto`` picks."""
    needs = preset_needs(preset, device, dtype)
    device_type = device.split(":")[0]
    modes = ", ".join(f"{mode} {gib(needs[mode])}" for mode in CONCRETE_MODES)
    line = f"{preset.name} on {device_type}: needs about {modes}; {gib(free_bytes)} free"
    fitting = [m for m in CONCRETE_MODES if needs[m] <= free_bytes]
    if not fitting:
        return f"{line}: does not fit in any mode."
    chosen = advise_mode(free_bytes, needs, device_type)
    line += f": --memory auto picks {chosen} ({MODE_WORDS[chosen]})"
    if chosen != "high" and device_type != "cpu":
        line += f"; high would need {gib(needs['high'] * HEADROOM)} with headroom"
    return line + "."


def check_loadable(preset, mode: str, device: str, free_bytes: int, dtype=None) -> str:
    """Refuse, before loading a byte, a preset that cannot fit in ``mode`` here (with needed vs
    free and the mode that would fit); returns the concrete mode ``mode`` resolves to."""
    needs = preset_needs(preset, device, dtype)
    device_type = device.split(":")[0]
    chosen = advise_mode(free_bytes, needs, device_type) if mode == "auto" else mode
    check_fits(chosen, free_bytes, needs, device_type, f"Model {preset.name!r}")
    return chosen


def _resident_bytes(pipe, device: str) -> int:
    """Bytes of this pipeline already on ``device``: free memory no longer counts them, but
    they are ours (on a CPU the loaded weights are all there)."""
    total = 0
    for module in torch_modules(pipe).values():
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.device.type == device:
                total += tensor.numel() * tensor.element_size()
    return total


def current_mode(pipe) -> str:
    """The memory mode ``apply_mode`` put this pipeline in (``high`` if never called)."""
    return state_of(pipe).mode


def apply_mode(
    pipe,
    mode: str,
    device: str,
    *,
    free_bytes: int | None = None,
    needs: MemoryNeeds | None = None,
    name: str | None = None,
) -> str:
    """Put ``pipe`` in memory ``mode`` on ``device``; returns the concrete mode applied.

    Call it once, on a freshly loaded pipeline (weights on the CPU, as ``from_pretrained``
    leaves them): it moves the weights itself. ``auto`` asks ``advise_mode``; a mode that does
    not fit raises ``ModelUnavailableError`` with needed vs free and the mode that would fit.
    ``free_bytes`` and ``needs`` override the measured values (tests, dry runs).
    """
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MEMORY_MODES)}, not {mode!r}")
    device_type = device.split(":")[0]
    if needs is None:
        needs = estimate_needs(pipe, device=device_type)
    if free_bytes is None:
        free_bytes = free_device_bytes(device) + _resident_bytes(pipe, device_type)
    chosen = advise_mode(free_bytes, needs, device_type) if mode == "auto" else mode
    label = name or f"Model {getattr(pipe, 'name_or_path', None) or type(pipe).__name__!r}"
    check_fits(chosen, free_bytes, needs, device_type, label)

    if device_type == "cpu" or chosen == "high":
        _move_or_explain(pipe, device, chosen, free_bytes, needs, label)
    elif chosen == "balanced":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    if chosen in ("balanced", "low"):
        vae = getattr(pipe, "vae", None)
        for switch in ("enable_tiling", "enable_slicing"):
            if hasattr(vae, switch):
                getattr(vae, switch)()
    if chosen == "low" and hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
    state_of(pipe).mode = chosen
    if mode == "auto":
        log.info(
            "memory mode auto -> %s (needs about %s, %s free on %s)",
            chosen,
            gib(needs[chosen]),
            gib(free_bytes),
            device,
        )
    return chosen


def _move_or_explain(pipe, device: str, mode: str, free_bytes: int, needs, label: str) -> None:
    """``pipe.to(device)``; an out-of-memory error (the estimate was low) becomes the same
    clear message as a refused mode, with the weights moved back off the device."""
    import torch

    try:
        pipe.to(device)
    except torch.OutOfMemoryError:
        pipe.to("cpu")
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        lower = [m for m in CONCRETE_MODES if needs[m] < needs[mode]]
        hint = f" Use --memory {lower[0]}." if lower else ""
        raise ModelUnavailableError(
            f"{label} ran out of {device} memory in {mode!r} memory mode (estimated need "
            f"{gib(needs[mode])}, {gib(free_bytes)} free).{hint}"
        ) from None
