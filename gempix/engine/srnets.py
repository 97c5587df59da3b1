"""Real-ESRGAN's two super-resolution networks in plain torch, and reading their weight files.

Why our own and not spandrel: spandrel imports torchvision at import time, and no torchvision
wheel on PyPI imports beside a CPU-only torch (its compiled ops link CUDA's libraries), which
is what our CI and many small hosts have. These two architectures cover the Real-ESRGAN family
that GemPix promises; anything else is refused with a message naming what is supported.

- ``ESRGAN`` (RRDBNet): original ESRGAN and community models such as 4x-UltraSharp (the old
  ``model.N`` key layout), BSRGAN/RealSR (``RRDB_trunk``), and Real-ESRGAN x4plus/x2plus
  (basicsr's ``body.N.rdbK`` layout; x2plus and x1 models pixel-unshuffle their input first).
- ``Compact`` (SRVGGNetCompact, PReLU): realesr-general-x4v3, realesr-animevideov3.

All layouts are renamed to basicsr's key names and loaded with ``strict=True``, so a file that
does not fit the architecture exactly is refused rather than run with missing weights.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

SUPPORTED = "ESRGAN/RRDBNet (Real-ESRGAN, BSRGAN, 4x-UltraSharp...) or SRVGGNetCompact"


class UnsupportedWeights(ValueError):
    """The weights are not one of the supported architectures; the message says why."""


class _DenseBlock(nn.Module):
    """Residual dense block: five 3x3 convolutions, each seeing all earlier features."""

    def __init__(self, features: int, growth: int):
        super().__init__()
        for index in range(1, 5):
            conv = nn.Conv2d(features + (index - 1) * growth, growth, 3, 1, 1)
            self.add_module(f"conv{index}", conv)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for index in range(1, 5):
            conv = getattr(self, f"conv{index}")
            seen.append(F.leaky_relu(conv(torch.cat(seen, 1)), 0.2))
        return self.conv5(torch.cat(seen, 1)) * 0.2 + x


class _RRDB(nn.Module):
    """Three dense blocks with a scaled residual around them (ESRGAN's building block)."""

    def __init__(self, features: int, growth: int):
        super().__init__()
        self.rdb1 = _DenseBlock(features, growth)
        self.rdb2 = _DenseBlock(features, growth)
        self.rdb3 = _DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator with basicsr's parameter names (``conv_first``, ``body.N.rdbK``...)."""

    def __init__(
        self,
        channels: int,
        features: int,
        blocks: int,
        growth: int,
        upsamples: int,
        unshuffle: int = 1,
    ):
        super().__init__()
        self.unshuffle = unshuffle
        self.upsamples = upsamples
        self.conv_first = nn.Conv2d(channels * unshuffle**2, features, 3, 1, 1)
        self.body = nn.Sequential(*(_RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        for index in range(1, upsamples + 1):
            self.add_module(f"conv_up{index}", nn.Conv2d(features, features, 3, 1, 1))
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for index in range(1, self.upsamples + 1):
            conv = getattr(self, f"conv_up{index}")
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact network: a plain conv/PReLU stack, then pixel shuffle, plus the
    nearest-neighbour upscaled input as a residual."""

    def __init__(self, channels: int, features: int, convs: int, scale: int):
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, 1, 1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, channels * scale**2, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = F.pixel_shuffle(out, self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class SuperResolution:
    """A loaded network and what tiling needs to know about it.

    Calling it maps a ``(1, 3, H, W)`` tensor in [0, 1] to ``(1, 3, H*scale, W*scale)`` in
    [0, 1]; sides that a pixel-unshuffle cannot split are reflect-padded, then cropped back.
    """

    def __init__(self, module: nn.Module, architecture: str, scale: int, features: int):
        self.module = module.eval()
        self.architecture = architecture
        self.scale = scale
        self.features = features
        self.multiple = getattr(module, "unshuffle", 1)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> SuperResolution:
        self.module.to(device=device, dtype=dtype)
        return self

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")
        output = self.module(image).clamp_(0, 1)
        return output[..., : height * self.scale, : width * self.scale]


def unwrap(state: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a checkpoint: basicsr saves them under ``params_ema`` or ``params``."""
    for key in ("params_ema", "params"):
        if isinstance(state.get(key), dict):
            return state[key]
    return state


_BSRGAN_NAMES = (
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\."), r"body.\1.rdb\2.conv\3."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv(\d)\."), r"conv_up\1."),
    (re.compile(r"^HRconv\."), "conv_hr."),
)
_OLD_DENSE = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TRUNK_END = re.compile(r"^model\.1\.sub\.\d+\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def _from_old_layout(state: dict[str, Any]) -> dict[str, Any]:
    """Original ESRGAN's ``model.N`` keys (a flattened nn.Sequential) in basicsr's names.

    ``model.0`` is the first conv and ``model.1.sub`` the trunk; after it come the upsampling
    convs, then the HR conv and the last conv (activations and upsample layers hold no keys).
    """
    top = sorted({int(m[1]) for key in state if (m := _OLD_TOP.match(key))} - {0})
    if len(top) < 2:
        raise UnsupportedWeights("it looks like an old-layout ESRGAN but lacks its last layers")
    *ups, hr, last = top
    names = {0: "conv_first", hr: "conv_hr", last: "conv_last"}
    names.update({index: f"conv_up{n}" for n, index in enumerate(ups, start=1)})
    renamed = {}
    for key, value in state.items():
        if match := _OLD_DENSE.match(key):
            block, rdb, conv, kind = match.groups()
            renamed[f"body.{block}.rdb{rdb}.conv{conv}.{kind}"] = value
        elif match := _OLD_TRUNK_END.match(key):
            renamed[f"conv_body.{match[1]}"] = value
        elif (match := _OLD_TOP.match(key)) and int(match[1]) in names:
            renamed[f"{names[int(match[1])]}.{match[2]}"] = value
        else:
            raise UnsupportedWeights(f"it looks like an old-layout ESRGAN but has a key {key!r}")
    return renamed


def _is_conv(weight: torch.Tensor | None) -> bool:
    """A 2-D convolution's weight: (out, in, kh, kw), none of them empty."""
    return weight is not None and weight.dim() == 4 and 0 not in weight.shape


def _count(state: dict[str, Any], pattern: str) -> int:
    """How many distinct layer numbers the keys matching ``pattern`` name (gaps fail later,
    in the strict load)."""
    return len({m[1] for key in state if (m := re.match(pattern, key))})


def _rrdb(state: dict[str, Any]) -> SuperResolution:
    if "model.0.weight" in state:
        state = _from_old_layout(state)
    for pattern, replacement in _BSRGAN_NAMES:
        state = {pattern.sub(replacement, key): value for key, value in state.items()}
    first, last = state.get("conv_first.weight"), state.get("conv_last.weight")
    dense = state.get("body.0.rdb1.conv1.weight")
    if not all(_is_conv(weight) for weight in (first, last, dense)):
        raise UnsupportedWeights("it looks like ESRGAN but lacks its first, last or dense layers")
    channels = last.shape[0]
    unshuffle = math.isqrt(first.shape[1] // channels)
    if unshuffle**2 * channels != first.shape[1] or unshuffle not in (1, 2, 4):
        raise UnsupportedWeights(
            f"it looks like ESRGAN but its first layer takes {first.shape[1]} channels "
            f"for {channels} out"
        )
    upsamples = _count(state, r"^conv_up(\d+)\.weight$")
    if 2**upsamples < unshuffle:
        raise UnsupportedWeights("it looks like ESRGAN but would make images smaller")
    scale = 2**upsamples // unshuffle
    network = RRDBNet(
        channels=channels,
        features=first.shape[0],
        blocks=_count(state, r"^body\.(\d+)\.rdb1\.conv1\.weight$"),
        growth=dense.shape[0],
        upsamples=upsamples,
        unshuffle=unshuffle,
    )
    _load_strict(network, state)
    return SuperResolution(network, "ESRGAN", scale, features=first.shape[0])


def _compact(state: dict[str, Any]) -> SuperResolution:
    layers = _count(state, r"^body\.(\d+)\.weight$")
    first, last = state["body.0.weight"], state.get(f"body.{layers - 1}.weight")
    if layers < 3 or layers % 2 == 0 or not (_is_conv(first) and _is_conv(last)):
        raise UnsupportedWeights("it looks like SRVGGNetCompact but its layers do not fit it")
    channels = first.shape[1]
    scale = math.isqrt(last.shape[0] // channels)
    if scale < 1 or scale**2 * channels != last.shape[0]:
        raise UnsupportedWeights("it looks like SRVGGNetCompact but its layers do not fit it")
    network = SRVGGNetCompact(channels, first.shape[0], convs=(layers - 3) // 2, scale=scale)
    _load_strict(network, state)
    return SuperResolution(network, "Compact", scale, features=first.shape[0])


def _load_strict(network: nn.Module, state: dict[str, Any]) -> None:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:  # torch lists every missing or mis-shaped key: keep a few
        detail = " ".join(str(error).splitlines()[1:]).strip()
        if len(detail) > 200:
            detail = detail[:200] + "..."
        raise UnsupportedWeights(f"its weights do not fit the architecture: {detail}") from None


def from_state_dict(state: dict[str, Any]) -> SuperResolution:
    """The network for a state dict, its architecture told by its keys; float32, on the CPU."""
    state = unwrap(state)
    if not state or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UnsupportedWeights("it does not hold a state dict of tensors")
    if any(".conv1x1." in key for key in state):
        raise UnsupportedWeights("ESRGAN+ models are not supported")
    if any(key in state for key in ("model.0.weight", "conv_first.weight")):
        return _rrdb(state)
    body = state.get("body.1.weight")
    if "body.0.weight" in state and body is not None and body.dim() == 1:
        return _compact(state)
    raise UnsupportedWeights("its keys are of no supported architecture")
