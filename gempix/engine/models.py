"""Loading models: which one, the offline rules, and the one shared pipeline per process.

Offline rules (README.md, "Models"): a model already in the local cache loads without the
network; otherwise the Hub is asked, with a short timeout. When it cannot be reached, ``auto``
falls back to ``tiny`` and says so loudly; a model the user named fails at once with a
one-line message telling them how to download it. Never a hang, never a traceback.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError
from ..settings import Settings
from .families import FAMILIES, build_tiny_family, load_family
from .fastpaths import fast_paths, warmup
from .hub import download_hint, hub_reachable, is_downloaded
from .memory import HEADROOM, apply_mode, check_loadable, gib, preset_needs
from .presets import AUTO_CPU, AUTO_GPU, PRESETS, ModelPreset, preset_for
from .runtime import configure_threads, free_device_bytes, on_zerogpu, resolve_device, resolve_dtype
from .tiny import ensure_tiny

log = logging.getLogger("gempix.models")

# What ``auto`` may pick on a CUDA card, best first: the first whose all-on-the-card need
# (``memory.preset_needs``, with HEADROOM) fits the free memory. Offloading a bigger model is
# slower than running a smaller one whole, so auto never picks a mode below high.
AUTO_GPU_ORDER = ("flux2-klein", AUTO_GPU, AUTO_CPU)


@dataclasses.dataclass(frozen=True)
class AutoPick:
    name: str
    reason: str


def auto_pick(device: str, free_bytes: int | None = None) -> AutoPick:
    """The preset ``auto`` means on ``device`` with ``free_bytes`` free, and why.

    A CPU or MPS gets sd-turbo (one step at 512 px: seconds, not minutes); a CUDA card the
    first of ``AUTO_GPU_ORDER`` that fits whole, else sd-turbo with offload.
    """
    if device.split(":")[0] != "cuda":
        return AutoPick(
            AUTO_CPU,
            f"{device}: {AUTO_CPU} draws a 512 px image in one step; the larger models take "
            "minutes per image without a CUDA GPU.",
        )
    free = free_device_bytes(device) if free_bytes is None else free_bytes
    for name in AUTO_GPU_ORDER:
        need = preset_needs(PRESETS[name], device)["high"] * HEADROOM
        if need <= free:
            return AutoPick(
                name,
                f"cuda: {gib(free)} free; {name} fits whole (needs {gib(need)} with headroom).",
            )
    return AutoPick(
        AUTO_CPU, f"cuda: only {gib(free)} free; {AUTO_CPU} is the smallest preset (offloaded)."
    )


def auto_model(device: str) -> str:
    return auto_pick(device).name if device.split(":")[0] == "cuda" else AUTO_CPU


@dataclasses.dataclass
class LoadedModel:
    """A pipeline plus what the rest of the app needs to know about it."""

    preset: ModelPreset
    pipe: Any
    device: str
    dtype: Any
    notice: str = ""  # e.g. the offline fallback banner; empty when all is as asked
    img2img: Any = None  # built on first use from the same modules (no second copy)
    inpaint: Any = None  # the same, for masked edits (pipeline.inpaint_pipeline)
    views: dict = dataclasses.field(default_factory=dict)  # a family's other tasks (pipeline)
    adapters: Any = None  # adapters.AdapterSet once an IP-Adapter is loaded (then kept)
    memory_mode: str = "high"  # the concrete mode applied (memory.apply_mode)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.preset.name


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    preset: ModelPreset
    source: str  # a local folder or a repo id for from_pretrained
    local_only: bool
    notice: str = ""


def choose_model(settings: Settings, device: str, model: str | None = None) -> ModelChoice:
    """Decide what to load, applying the offline rules, without importing diffusers."""
    requested = model or settings.model
    name = auto_model(device) if requested == "auto" else requested
    if name == "tiny":
        folder = ensure_tiny(settings.models_dir / "tiny")
        return ModelChoice(PRESETS["tiny"], str(folder), local_only=True)
    preset = preset_for(name)
    if preset.tiny_of:
        folder = build_tiny_family(preset.tiny_of, settings.models_dir / preset.name)
        return ModelChoice(preset, str(folder), local_only=True)
    if Path(name).is_dir():
        return ModelChoice(preset, name, local_only=True)
    if is_downloaded(preset.repo_id):
        return ModelChoice(preset, preset.repo_id, local_only=True)
    if hub_reachable(settings.hub_timeout):
        return ModelChoice(preset, preset.repo_id, local_only=False)
    if requested == "auto":
        notice = (
            f"Offline: {name} is not downloaded and the Hugging Face Hub is unreachable, so "
            f"GemPix is serving the tiny offline model, which draws noise, not pictures. "
            f"{download_hint(name)}"
        )
        log.warning(notice)
        folder = ensure_tiny(settings.models_dir / "tiny")
        return ModelChoice(PRESETS["tiny"], str(folder), local_only=True, notice=notice)
    raise ModelUnavailableError(
        f"Model {name!r} is not downloaded and the Hugging Face Hub is unreachable. "
        f"{download_hint(name)}"
    )


def quiet_libraries() -> None:
    """Our own progress callback reports steps; the libraries' bars and notices are noise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def load_pipeline(choice: ModelChoice, dtype):
    """The pipeline with its weights on the CPU, where ``from_pretrained`` leaves them:
    ``prepare`` puts them on the device as the memory mode says (all, per model, per layer).
    A current family loads its own pipeline class (``families.load_family``)."""
    from diffusers import AutoPipelineForText2Image

    try:
        if choice.preset.family in FAMILIES:
            pipe = load_family(
                choice.preset.family, choice.source, dtype=dtype, local_files_only=choice.local_only
            )
        else:
            pipe = AutoPipelineForText2Image.from_pretrained(
                choice.source, dtype=dtype, local_files_only=choice.local_only
            )
    except OSError as error:
        raise ModelUnavailableError(
            f"Could not load model {choice.preset.name!r}: {str(error).splitlines()[0]} "
            f"{download_hint(choice.preset.name)}"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prepare(loaded: LoadedModel, settings: Settings) -> None:
    """Memory mode, fast paths and CPU threads for a freshly loaded model.

    ``auto`` picks the fastest memory mode that fits the free memory; a model that fits in no
    mode (or not in the mode asked for) raises ModelUnavailableError with needed vs free and
    the mode that would fit. Compiling is lazy (first call per image size): ``gempix serve
    --warmup`` pays it at start-up, otherwise the request that pays it is told so.
    """
    if on_zerogpu():  # ZeroGPU moves the weights to its GPU per call: no offload hooks there
        loaded.pipe.to(loaded.device)
        return
    if loaded.device == "cpu":
        configure_threads(settings.threads)
    loaded.memory_mode = apply_mode(
        loaded.pipe, settings.memory, loaded.device, name=f"Model {loaded.name!r}"
    )
    compile = False if settings.compile == "off" else settings.compile
    report = fast_paths(loaded.pipe, loaded.device, compile=compile)
    log.info(
        "%s on %s: memory mode %s; fast paths: %s; skipped: %s",
        loaded.name,
        loaded.device,
        loaded.memory_mode,
        "; ".join(report.applied) or "none",
        "; ".join(report.skipped) or "none",
    )


class ModelManager:
    """Holds the one pipeline of this process; loads lazily, switches by releasing first.

    Loading happens under a lock so two first requests don't load two copies; switching models
    drops the old pipeline before loading the new one, so peak memory never holds both.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._loaded_for: str | None = None  # the name asked for, e.g. "auto"

    @property
    def loaded_name(self) -> str | None:
        """The model serving now, without loading one (None before the first load)."""
        loaded = self._loaded
        return loaded.name if loaded is not None else None

    def get(self, model: str | None = None) -> LoadedModel:
        wanted = model or self.settings.model
        with self._lock:
            if self._loaded is not None and self._loaded_for == wanted:
                return self._loaded
            self._release()
            device = resolve_device(self.settings.device)
            quiet_libraries()
            choice = choose_model(self.settings, device, wanted)
            dtype = resolve_dtype(self.settings.dtype, device, choice.preset)
            if choice.preset.name in PRESETS and not choice.preset.is_tiny and not on_zerogpu():
                # before loading (or downloading) tens of GB that cannot fit anyway
                free = free_device_bytes(device)
                check_loadable(choice.preset, self.settings.memory, device, free, dtype)
            loaded = LoadedModel(
                choice.preset, load_pipeline(choice, dtype), device, dtype, choice.notice
            )
            prepare(loaded, self.settings)
            self._loaded, self._loaded_for = loaded, wanted
            return self._loaded

    def warm_up(self) -> float:
        """Load the model and generate once at its native size, at start-up, so no user's first
        request pays for lazy initialisation or (with GEMPIX_COMPILE) the compile; returns the
        seconds it took. Other sizes compile on first use, announced to that request."""
        timings = warmup(self.get())
        return sum(seconds for _, seconds in timings)

    def _release(self) -> None:
        if self._loaded is None:
            return
        self._loaded = self._loaded_for = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def download(settings: Settings, model: str) -> str:
    """Fetch a model into the local Hugging Face cache for offline use; returns its folder."""
    if model == "tiny":
        return str(ensure_tiny(settings.models_dir / "tiny"))
    if preset_for(model).tiny_of:
        return str(build_tiny_family(preset_for(model).tiny_of, settings.models_dir / model))
    name = auto_model(resolve_device(settings.device)) if model == "auto" else model
    preset = preset_for(name)
    if not hub_reachable(settings.hub_timeout):
        raise ModelUnavailableError(
            f"Cannot download {name!r}: the Hugging Face Hub is unreachable from this machine."
        )
    from diffusers import DiffusionPipeline

    return str(DiffusionPipeline.download(preset.repo_id))
