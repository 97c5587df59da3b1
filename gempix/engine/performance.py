"""Speed and memory: memory modes, fast paths, compile warm-up and NaN-safe VAE decoding.

Memory modes (``--memory``, see docs/performance.md):

- ``high``: every component on the device. Fastest; needs all weights plus working memory.
- ``balanced``: model CPU offload (one whole component on the GPU at a time) plus VAE tiling
  and slicing. Needs the largest component plus working memory; a few % slower per image.
- ``low``: sequential CPU offload (one layer at a time), VAE tiling and slicing, attention
  slicing. Needs the largest single layer plus working memory; several times slower.
- ``auto``: the first of high, balanced, low whose estimated need, times ``HEADROOM``, fits
  in the free memory of the device (``advise_mode``).

On a CPU the weights stay where they are in every mode (offloading to the CPU from the CPU
means nothing); ``balanced`` and ``low`` still turn on VAE tiling/slicing and, for ``low``,
attention slicing, which bound the working memory of large images.

Fast paths (``fast_paths``): PyTorch scaled-dot-product attention (``AttnProcessor2_0``),
``channels_last`` on CUDA, and an optional ``torch.compile`` of the denoiser, compiled once per
shape and reused; ``warmup`` compiles chosen sizes at start-up, and ``compile_notice`` tells a
request that it is about to pay for a compile instead of letting it happen unannounced.

Half precision: ``decode_safe`` decodes latents with the VAE in its own dtype and, when a
float16 decode overflows into NaN/inf (the black-image failure), decodes again with the VAE
upcast to float32 and remembers to do so from then on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import GemPixError, ModelUnavailableError

log = logging.getLogger("gempix.performance")

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
    "tiny": (600_000, 300_000, 20_000),
}


class NumericalError(GemPixError):
    """The model produced NaN/inf latents: no decoder precision can turn them into a picture."""

    status = 500


# ---------------------------------------------------------------------------------------------
# Memory: estimates, advice, application


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


def _module_bytes(module, itemsize: int | None) -> int:
    total = 0
    for tensor in (*module.parameters(), *module.buffers()):
        size = itemsize if itemsize and tensor.is_floating_point() else tensor.element_size()
        total += tensor.numel() * size
    return total


def _largest_layer_bytes(module, itemsize: int | None) -> int:
    largest = 0
    for sub in module.modules():
        direct = [*sub.parameters(recurse=False), *sub.buffers(recurse=False)]
        size = sum(
            t.numel() * (itemsize if itemsize and t.is_floating_point() else t.element_size())
            for t in direct
        )
        largest = max(largest, size)
    return largest


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
        sizes = [_module_bytes(part, itemsize) for part in modules.values()]
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


def free_device_bytes(device: str) -> int:
    """Bytes the device can still give: CUDA's free memory, MPS's budget, or available RAM."""
    import torch

    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if device == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    import psutil

    return int(psutil.virtual_memory().available)


def _resident_bytes(pipe, device: str) -> int:
    """Bytes of this pipeline already on ``device``: free memory no longer counts them, but
    they are ours (on a CPU the loaded weights are all there)."""
    total = 0
    for module in torch_modules(pipe).values():
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.device.type == device:
                total += tensor.numel() * tensor.element_size()
    return total


@dataclasses.dataclass
class _PipeState:
    mode: str = "high"
    device: str = "cpu"
    compiled: bool = False
    shapes: set = dataclasses.field(default_factory=set)
    vae_upcast: bool = False  # a float16 decode overflowed once: decode in float32 from now on
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(pipe) -> _PipeState:
    with _STATES_LOCK:
        state = _STATES.get(pipe)
        if state is None:
            state = _STATES[pipe] = _PipeState()
        return state


def current_mode(pipe) -> str:
    """The memory mode ``apply_mode`` put this pipeline in (``high`` if never called)."""
    return _state(pipe).mode


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
    state = _state(pipe)
    state.mode, state.device = chosen, device
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


# ---------------------------------------------------------------------------------------------
# CPU hygiene


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads do not speed up matmuls)."""
    import psutil

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, min(physical, allowed or physical))


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (``None`` or 0: physical cores); returns the count set."""
    import torch

    count = threads or physical_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


# ---------------------------------------------------------------------------------------------
# Fast paths: attention, memory format, compile


@dataclasses.dataclass
class FastPaths:
    """What ``fast_paths`` did, and what it skipped and why (logged when a model loads)."""

    applied: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)


def _denoiser(pipe):
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def use_sdpa(module) -> tuple[int, int]:
    """Swap classic ``AttnProcessor`` for ``AttnProcessor2_0`` (PyTorch SDPA).

    Other processors (IP-Adapter, sliced attention, FLUX's own) are left alone. Returns
    (swapped, already SDPA).
    """
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processors = getattr(module, "attn_processors", None)
    if not processors:
        return 0, 0
    swapped = already = 0
    updated = {}
    for key, processor in processors.items():
        if type(processor) is AttnProcessor:
            processor = AttnProcessor2_0()
            swapped += 1
        elif type(processor) is AttnProcessor2_0:
            already += 1
        updated[key] = processor
    if swapped:
        module.set_attn_processor(updated)
    return swapped, already


def fast_paths(
    pipe, device: str, compile: bool | str = False, backend: Any = "inductor"
) -> FastPaths:
    """SDPA attention, ``channels_last`` on CUDA, optional ``torch.compile`` of the denoiser.

    Call after ``apply_mode``. ``compile``: False, True/"full" (the whole UNet/transformer), or
    "regional" (only its repeated blocks: a fraction of the compile time for most of the gain).
    Compiling is lazy: the first call at each shape compiles (``warmup`` does it at start-up).
    It is skipped in offload modes, where weights move on every call.
    """
    import torch

    report = FastPaths()
    state = _state(pipe)
    device_type = device.split(":")[0]
    for name in ("unet", "transformer", "vae"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        swapped, already = use_sdpa(module)
        if swapped or already:
            report.applied.append(f"{name}: SDPA attention ({swapped} set, {already} already)")

    if device_type == "cuda":
        for name in ("unet", "vae"):
            module = getattr(pipe, name, None)
            if module is None:
                continue
            if state.mode == "low":
                report.skipped.append(f"{name}: channels_last (sequential offload keeps copies)")
                continue
            module.to(memory_format=torch.channels_last)
            report.applied.append(f"{name}: channels_last")
    else:
        report.skipped.append(f"channels_last: only helps convolutions on CUDA, not {device}")

    if compile:
        denoiser = _denoiser(pipe)
        if state.mode != "high" and device_type != "cpu":
            report.skipped.append(f"torch.compile: not in {state.mode!r} mode (weights move)")
        elif denoiser is None:
            report.skipped.append("torch.compile: no unet or transformer")
        elif state.compiled:
            report.applied.append("torch.compile: already compiled")
        else:
            regional = compile == "regional" and getattr(denoiser, "_repeated_blocks", None)
            if regional:
                denoiser.compile_repeated_blocks(dynamic=False, backend=backend)
            else:
                denoiser.compile(dynamic=False, backend=backend)
            state.compiled = True
            kind = "regional" if regional else "full"
            report.applied.append(f"torch.compile ({kind}, one graph per shape)")
    return report


def shape_key(width: int, height: int, batch: int = 1, guidance: float = 0.0) -> tuple:
    """What a compiled graph depends on: size, images per call, and guidance on/off (CFG
    doubles the UNet batch)."""
    return (int(width), int(height), int(batch), guidance > 1.0)


def compile_notice(
    pipe, width: int, height: int, batch: int = 1, guidance: float = 0.0
) -> str | None:
    """A message when this call is about to compile a new shape, else None.

    The caller shows it (a progress stage, a warning) so a compile never happens unannounced;
    the shape is then counted as compiled.
    """
    state = _state(pipe)
    if not state.compiled:
        return None
    key = shape_key(width, height, batch, guidance)
    with state.lock:
        if key in state.shapes:
            return None
        state.shapes.add(key)
    return (
        f"First image at {width}x{height} (batch {batch}) since start-up: compiling the model "
        "for this size, which can take a minute; later ones at this size are fast. "
        "Start with --warmup to compile at start-up instead."
    )


def warmup(
    loaded,
    sizes: Iterable[tuple[int, int]] | None = None,
    batch_sizes: Iterable[int] = (1,),
    steps: int = 1,
    guidance: float | None = None,
) -> list[tuple[tuple, float]]:
    """Run one short generation per size at start-up (compiles each shape when compiled; pays
    lazy CUDA/cuDNN initialisation otherwise). Returns (shape key, seconds) per shape."""
    import torch

    pipe = loaded.pipe
    preset = loaded.preset
    sizes = list(sizes or [preset.native])
    guidance = preset.guidance if guidance is None else guidance
    state = _state(pipe)
    timings = []
    for width, height in sizes:
        for batch in batch_sizes:
            started = time.perf_counter()
            with loaded.lock, torch.inference_mode():
                pipe(
                    prompt=["warm-up"] * batch,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    width=width,
                    height=height,
                    generator=torch.Generator("cpu").manual_seed(0),
                )
            key = shape_key(width, height, batch, guidance)
            with state.lock:
                state.shapes.add(key)
            timings.append((key, time.perf_counter() - started))
            log.info("warm-up %s: %.1f s", key, timings[-1][1])
    return timings


# ---------------------------------------------------------------------------------------------
# Half precision: NaN-safe VAE decoding


def _vae_dtype(vae):
    return next(vae.parameters()).dtype


def vae_is_half(pipe) -> bool:
    import torch

    vae = getattr(pipe, "vae", None)
    return vae is not None and _vae_dtype(vae) == torch.float16


def guards_decode(pipe) -> bool:
    """True when ``call_pipeline`` decodes itself: a float16 VAE under a pipeline whose latents
    are plain image latents (SD, SDXL and their img2img pipelines; not FLUX's packed ones)."""
    from diffusers import AutoencoderKL

    vae = getattr(pipe, "vae", None)
    return isinstance(vae, AutoencoderKL) and vae_is_half(pipe) and hasattr(pipe, "unet")


def _unscale(vae, latents):
    import torch

    config = vae.config
    mean = getattr(config, "latents_mean", None)
    std = getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        channels = latents.shape[1]
        mean = torch.tensor(mean).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        std = torch.tensor(std).view(1, channels, 1, 1).to(latents.device, latents.dtype)
        return latents * std / config.scaling_factor + mean
    shift = getattr(config, "shift_factor", None) or 0.0
    return latents / config.scaling_factor + shift


def _decode(vae, latents, dtype):
    device = _vae_execution_device(vae, latents)
    return vae.decode(latents.to(device=device, dtype=dtype), return_dict=False)[0]


def _vae_execution_device(vae, latents):
    hook = getattr(vae, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return execution
    for parameter in vae.parameters():
        if parameter.device.type != "meta":
            return parameter.device
    return latents.device


def decode_safe(pipe, latents, output_type: str = "pil"):
    """Decode latents to images, recovering from float16 overflow.

    Decodes in the VAE's dtype unless this pipeline overflowed before (or is SDXL with
    ``force_upcast``, as diffusers does); when the result holds NaN/inf and the VAE is float16,
    decodes again with the VAE upcast to float32 and remembers that for later calls. NaN
    latents (a denoiser failure) raise ``NumericalError``: no decoder precision fixes those.
    """
    import torch

    vae = pipe.vae
    state = _state(pipe)
    if not torch.isfinite(latents).all():
        raise NumericalError(
            "The model produced invalid values (NaN) while denoising in "
            f"{str(latents.dtype).replace('torch.', '')}. Try GEMPIX_DTYPE=float32 or bfloat16."
        )
    latents = _unscale(vae, latents.float())  # in float32: 1/scaling_factor can overflow fp16
    half = _vae_dtype(vae) == torch.float16
    force = half and getattr(vae.config, "force_upcast", False) and hasattr(pipe, "upcast_vae")
    with torch.inference_mode():
        image = None
        if not (state.vae_upcast or force) or not half:
            image = _decode(vae, latents, _vae_dtype(vae))
            if half and not torch.isfinite(image).all():
                log.warning("float16 VAE decode overflowed (NaN/inf); decoding in float32")
                with state.lock:
                    state.vae_upcast = True
                image = None
        if image is None:
            vae.to(dtype=torch.float32)
            try:
                image = _decode(vae, latents, torch.float32)
            finally:
                vae.to(dtype=torch.float16)
    if not torch.isfinite(image).all():
        raise NumericalError("The VAE produced invalid values (NaN) even in float32.")
    processor = getattr(pipe, "image_processor", None)
    if processor is None:
        from diffusers.image_processor import VaeImageProcessor

        processor = VaeImageProcessor(vae_scale_factor=getattr(pipe, "vae_scale_factor", 8))
    return processor.postprocess(image.float(), output_type=output_type)


def call_pipeline(pipe, kwargs: Mapping[str, Any]) -> list:
    """``pipe(**kwargs).images``, with the VAE decode guarded when it runs in float16."""
    if not guards_decode(pipe) or kwargs.get("output_type", "pil") != "pil":
        return pipe(**kwargs).images
    latents = pipe(**{**kwargs, "output_type": "latent"}).images
    images = decode_safe(pipe, latents)
    if getattr(pipe, "_all_hooks", None):  # model offload: the VAE goes back to the CPU too
        pipe.maybe_free_model_hooks()
    return images
