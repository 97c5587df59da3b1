"""Fast paths: SDPA attention, ``channels_last``, ``torch.compile``, and paying the compile early.

A compiled denoiser compiles once per shape; ``warmup`` pays for chosen shapes at start-up, and
``compile_notice`` tells a request that it is about to pay, so it never happens unannounced.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from .calls import call_kwargs
from .pipeline import call_pipeline
from .pipestate import state_of

log = logging.getLogger("gempix.fastpaths")


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
    state = state_of(pipe)
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
    state = state_of(pipe)
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
    state = state_of(pipe)
    timings = []
    for width, height in sizes:
        for batch in batch_sizes:
            started = time.perf_counter()
            kwargs = call_kwargs(
                preset,
                prompt="warm-up",
                negative_prompt=None,
                steps=steps,
                guidance=guidance,
                width=width,
                height=height,
                generator=torch.Generator("cpu").manual_seed(0),
                num_images_per_prompt=batch,
            )
            with loaded.lock, torch.inference_mode():
                call_pipeline(pipe, kwargs)
            key = shape_key(width, height, batch, guidance)
            with state.lock:
                state.shapes.add(key)
            timings.append((key, time.perf_counter() - started))
            log.info("warm-up %s: %.1f s", key, timings[-1][1])
    return timings
