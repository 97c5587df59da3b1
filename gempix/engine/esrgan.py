"""Real-ESRGAN-family upscalers: weights on disk or in the Hub cache, loaded by ``srnets``.

Three kinds of weights reach the same loader (``load``):
- the default, Real-ESRGAN x4plus (RRDB, 23 blocks, 64 features) as safetensors from the
  Hugging Face Hub, fetched once while online and then read from the local cache;
- any local ESRGAN or SRVGGNetCompact file (``.safetensors`` or ``.pth``), e.g. 4x-UltraSharp;
- the tiny model's upscaler: the same RRDB architecture with one block and 8 features, random
  weights from a fixed seed, saved with Real-ESRGAN's key names so architecture detection
  and loading run exactly as for the real file.

Nothing here downloads unless asked to, and a download that cannot happen fails at once with
a message that says how to get the weights; it never hangs on an unreachable Hub.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelUnavailableError, ValidationError
from .hub import cached_file, hub_reachable

if TYPE_CHECKING:
    from .srnets import SuperResolution

DEFAULT_REPO = "Comfy-Org/Real-ESRGAN_repackaged"
DEFAULT_FILE = "RealESRGAN_x4plus.safetensors"
# Where the tiny model keeps its upscaler, relative to the tiny model's folder.
TINY_ESRGAN_FILE = Path("upscaler") / "esrgan-x4.safetensors"
TINY_FEATURES = 8
TINY_BLOCKS = 1
GROWTH_CHANNELS = 32  # Real-ESRGAN's num_grow_ch
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
MAX_SCALE = 8  # x16 would hold 256 output pixels per input pixel in memory


def rrdb_state_dict(
    num_feat: int = 64, num_block: int = 23, scale: int = 4, seed: int = 0
) -> dict[str, Any]:
    """A random-weight RRDBNet state dict with Real-ESRGAN's (basicsr's) key names.

    Kaiming-normal convolutions, the dense-block ones scaled down (as basicsr does, so the
    residual trunk stays near identity) and the last one centred on mid-grey, so the output
    varies with the input instead of clipping to black or white. One seeded CPU generator:
    the tensors are the same on every build.
    """
    import torch

    if scale not in (2, 4, 8):
        raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
    generator = torch.Generator("cpu").manual_seed(seed)
    state: dict[str, Any] = {}

    def conv(name: str, out_ch: int, in_ch: int, gain: float = 2.0, bias: float = 0.0) -> None:
        weight = torch.randn(out_ch, in_ch, 3, 3, generator=generator) * (gain / (in_ch * 9)) ** 0.5
        state[f"{name}.weight"] = weight.contiguous()
        state[f"{name}.bias"] = torch.full((out_ch,), bias)

    grow = GROWTH_CHANNELS
    conv("conv_first", num_feat, 3)
    for block in range(num_block):
        for rdb in (1, 2, 3):
            prefix = f"body.{block}.rdb{rdb}"
            for index in range(1, 5):
                conv(f"{prefix}.conv{index}", grow, num_feat + (index - 1) * grow, gain=0.02)
            conv(f"{prefix}.conv5", num_feat, num_feat + 4 * grow, gain=0.02)
    conv("conv_body", num_feat, num_feat)
    for index in range({2: 1, 4: 2, 8: 3}[scale]):
        conv(f"conv_up{index + 1}", num_feat, num_feat)
    conv("conv_hr", num_feat, num_feat)
    conv("conv_last", 3, num_feat, gain=0.05, bias=0.5)
    return state


def save_state_dict(state: dict[str, Any], path: Path, kind: str) -> Path:
    """Write safetensors atomically (temp file, then rename): never a half-written model."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".esrgan-", suffix=".safetensors", dir=path.parent)
    os.close(handle)
    try:
        save_file(state, staging, metadata={"gempix": kind})
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return path


def build_tiny_esrgan(path: Path) -> Path:
    """The tiny model's x4 upscaler at ``path`` (a .safetensors file), built from seed 0.

    About 0.9 MB (Real-ESRGAN's dense blocks keep 32 growth channels whatever the width);
    byte-identical on every build. It draws noise, like the rest of ``tiny``.
    """
    state = rrdb_state_dict(num_feat=TINY_FEATURES, num_block=TINY_BLOCKS, scale=4, seed=0)
    return save_state_dict(state, path, kind="tiny-esrgan-x4")


def build_full_esrgan(path: Path, seed: int = 0) -> Path:
    """Real-ESRGAN x4plus's architecture (23 RRDB blocks, 64 features) with random weights."""
    state = rrdb_state_dict(num_feat=64, num_block=23, scale=4, seed=seed)
    return save_state_dict(state, path, kind="random-esrgan-x4plus")


def cached_default() -> Path | None:
    """The default Real-ESRGAN weights when they are in the local Hub cache, else None."""
    return cached_file(DEFAULT_REPO, DEFAULT_FILE)


def download_hint() -> str:
    return (
        "Download it once while online with: gempix download esrgan "
        "(or set GEMPIX_ESRGAN_WEIGHTS to a local .safetensors/.pth file)"
    )


def download_default(hub_timeout: float = 10) -> Path:
    """Fetch the default weights into the Hub cache (a no-op when cached); fail fast offline."""
    cached = cached_default()
    if cached is not None:
        return cached
    if not hub_reachable(hub_timeout):
        raise ModelUnavailableError(
            f"The ESRGAN upscaler ({DEFAULT_REPO}/{DEFAULT_FILE}) is not downloaded and the "
            f"Hugging Face Hub is unreachable. {download_hint()}."
        )
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(DEFAULT_REPO, DEFAULT_FILE, etag_timeout=hub_timeout))
    except Exception as error:  # network errors come in many classes; the message matters
        raise ModelUnavailableError(
            f"Could not download the ESRGAN upscaler: {str(error).splitlines()[0]} "
            f"{download_hint()}."
        ) from None


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors in a weights file: safetensors, or a pickle read with ``weights_only``
    (torch's restricted unpickler: a .pth cannot run code while loading)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a dict of tensors")
    return state


def load(path: Path, device: str = "cpu", half: bool = False) -> SuperResolution:
    """Load a Real-ESRGAN-family upscaler (see ``srnets``); a clear error for anything else.

    Returns the network in eval mode on ``device``, in float16 when ``half``.
    """
    import torch

    from . import srnets  # imports torch: only when an upscaler is really loaded

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"esrgan weights: no such file: {path}")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ValidationError(
            f"esrgan weights: {path.name} is not a model file; expected one of "
            f"{', '.join(MODEL_SUFFIXES)}."
        )
    try:
        state = read_state_dict(path)
    except Exception as error:  # a damaged or foreign file fails in many library classes
        raise ValidationError(
            f"esrgan weights: could not read {path.name}: {str(error).splitlines()[0]}"
        ) from None
    try:
        network = srnets.from_state_dict(state)
    except srnets.UnsupportedWeights as error:
        raise ValidationError(
            f"esrgan weights: {path.name}: {error}. Supported: {srnets.SUPPORTED}."
        ) from None
    if not 2 <= network.scale <= MAX_SCALE:
        raise ValidationError(
            f"esrgan weights: {path.name} is an x{network.scale} {network.architecture} model; "
            f"GemPix runs x2 to x{MAX_SCALE} super-resolution."
        )
    return network.to(device, torch.float16 if half else None)
