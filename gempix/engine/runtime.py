"""What this machine offers: the device, the dtype, CPU threads, free memory, ZeroGPU.

Read from torch, psutil and the environment only; the loader, the memory modes, the tiler and
the ZeroGPU wrappers all ask here.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import SettingsError
from .presets import ModelPreset

ZEROGPU_ENV = "SPACES_ZERO_GPU"  # set by Hugging Face on ZeroGPU hardware (see zerogpu.py)


def on_zerogpu(environ: Any = None) -> bool:
    """True on a ZeroGPU Space: ``SPACES_ZERO_GPU`` set to anything but empty/0/false/no/off."""
    value = (os.environ if environ is None else environ).get(ZEROGPU_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def resolve_device(requested: str) -> str:
    """``auto``: CUDA, else MPS, else the CPU; a named device must be there."""
    import torch

    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if requested == "auto":
        return next((device for device, here in available.items() if here), "cpu")
    if requested != "cpu" and not available[requested]:
        raise SettingsError(
            f"GEMPIX_DEVICE={requested} but no {requested} device is available here; "
            "use auto or cpu."
        )
    return requested


def resolve_dtype(requested: str, device: str, preset: ModelPreset):
    import torch

    if requested == "auto":
        if preset.is_tiny:
            return torch.float32
        if preset.dtype:  # the current families: bf16 everywhere (float32 is 32-115 GB)
            return getattr(torch, preset.dtype)
        if device == "cpu":
            return torch.float32
        return torch.bfloat16 if preset.family == "flux" else torch.float16
    return getattr(torch, requested)


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
