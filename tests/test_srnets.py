"""The super-resolution networks and their weight files, checked against the papers' maths.

Real weights cannot be downloaded here, so each check pins the architecture another way: the
published parameter counts of Real-ESRGAN x4plus, realesr-general-x4v3 and animevideov3; a
forward pass written out independently from basicsr's formulas; the same weights saved in
each of the three key layouts giving the same pixels; and SRVGGNetCompact reducing to its
nearest-neighbour residual when its last convolution is zero.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional as F

from gempix.engine import esrgan, srnets
from gempix.errors import ValidationError

# Published parameter counts: RealESRGAN_x4plus.pth (RRDBNet, 64 features, 23 blocks, x4);
# realesr-general-x4v3.pth and realesr-animevideov3.pth (SRVGGNetCompact, 64 features, 32 and
# 16 body convolutions, x4).
X4PLUS_PARAMETERS = 16_697_987
GENERAL_X4V3_PARAMETERS = 1_213_296
ANIMEVIDEO_V3_PARAMETERS = 621_424


def tiny_state(scale: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    return esrgan.rrdb_state_dict(num_feat=8, num_block=2, scale=scale, seed=seed)


def reference_rrdb(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """basicsr's RRDBNet.forward written out with functional calls on the raw state dict."""

    def conv(name: str, value: torch.Tensor) -> torch.Tensor:
        return F.conv2d(value, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)

    def lrelu(value: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(value, 0.2)

    def dense(prefix: str, value: torch.Tensor) -> torch.Tensor:
        x1 = lrelu(conv(f"{prefix}.conv1", value))
        x2 = lrelu(conv(f"{prefix}.conv2", torch.cat((value, x1), 1)))
        x3 = lrelu(conv(f"{prefix}.conv3", torch.cat((value, x1, x2), 1)))
        x4 = lrelu(conv(f"{prefix}.conv4", torch.cat((value, x1, x2, x3), 1)))
        x5 = conv(f"{prefix}.conv5", torch.cat((value, x1, x2, x3, x4), 1))
        return x5 * 0.2 + value

    feat = conv("conv_first", x)
    trunk = feat
    block = 0
    while f"body.{block}.rdb1.conv1.weight" in state:
        inner = trunk
        for rdb in (1, 2, 3):
            inner = dense(f"body.{block}.rdb{rdb}", inner)
        trunk = inner * 0.2 + trunk
        block += 1
    feat = feat + conv("conv_body", trunk)
    up = 1
    while f"conv_up{up}.weight" in state:
        feat = lrelu(conv(f"conv_up{up}", F.interpolate(feat, scale_factor=2, mode="nearest")))
        up += 1
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def old_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights under original ESRGAN's key names (4x-UltraSharp and its kind)."""
    blocks = len({key.split(".")[1] for key in state if key.startswith("body.")})
    ups = len({key.split(".")[0] for key in state if key.startswith("conv_up")})
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}"}
    names.update({f"conv_up{n}": f"model.{3 * n}" for n in range(1, ups + 1)})
    names.update({"conv_hr": f"model.{3 * ups + 2}", "conv_last": f"model.{3 * ups + 4}"})
    old = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":  # body.B.rdbK.convM.kind
            rdb = parts[2].replace("rdb", "RDB")
            old[f"model.1.sub.{parts[1]}.{rdb}.{parts[3]}.0.{parts[4]}"] = value
        else:
            old[f"{names[parts[0]]}.{parts[1]}"] = value
    return old


def bsrgan_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights under BSRGAN/RealSR's key names."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("conv_body.", "trunk_conv.").replace("conv_up", "upconv")
        key = key.replace("conv_hr.", "HRconv.")
        if key.startswith("body."):
            key = "RRDB_trunk." + key.removeprefix("body.").replace(".rdb", ".RDB")
        renamed[key] = value
    return renamed


def test_x4plus_architecture_has_the_published_parameter_count(tmp_path):
    network = esrgan.load(esrgan.build_full_esrgan(tmp_path / "x4plus.safetensors"))
    assert (network.architecture, network.scale, network.features) == ("ESRGAN", 4, 64)
    assert len(network.module.body) == 23
    assert sum(p.numel() for p in network.module.parameters()) == X4PLUS_PARAMETERS


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_rrdb_matches_basicsr_forward_written_out(scale):
    state = tiny_state(scale)
    network = srnets.from_state_dict(dict(state))
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = reference_rrdb(state, x).clamp(0, 1)
        got = network(x)
    assert network.scale == scale
    assert got.shape == (1, 3, 12 * scale, 10 * scale)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert got.std() > 0.01, "The network's output is flat: the check would prove nothing."


@pytest.mark.parametrize("layout", [old_layout, bsrgan_layout], ids=["esrgan-old", "bsrgan"])
def test_every_key_layout_gives_the_same_pixels(layout, tmp_path):
    state = tiny_state()
    new_file = esrgan.save_state_dict(state, tmp_path / "new.safetensors", kind="test")
    other_file = tmp_path / "other.pth"
    torch.save(layout(state), other_file)
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(esrgan.load(new_file)(x), esrgan.load(other_file)(x))


def test_basicsr_checkpoints_wrap_their_tensors_in_params_ema(tmp_path):
    state = tiny_state()
    path = tmp_path / "net_g.pth"
    torch.save({"params_ema": state, "params": tiny_state(seed=9)}, path)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        torch.testing.assert_close(esrgan.load(path)(x), reference_rrdb(state, x).clamp(0, 1))


def test_x2plus_unshuffles_its_input_and_pads_odd_sides():
    """Real-ESRGAN x2plus: pixel-unshuffle by 2 (12 channels in), then two x2 upsamples."""
    state = esrgan.rrdb_state_dict(num_feat=8, num_block=1, scale=4, seed=4)
    generator = torch.Generator().manual_seed(5)
    state["conv_first.weight"] = torch.randn(8, 12, 3, 3, generator=generator) * 0.1
    network = srnets.from_state_dict(state)
    assert network.scale == 2 and network.multiple == 2
    even = torch.rand(1, 3, 10, 12, generator=generator)
    with torch.inference_mode():
        expected = reference_rrdb(state, F.pixel_unshuffle(even, 2)).clamp(0, 1)
        torch.testing.assert_close(network(even), expected, rtol=0, atol=1e-5)
        assert network(even[..., :9, :11]).shape == (1, 3, 18, 22)


def compact_state(features: int = 8, convs: int = 2, scale: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(6)
    state: dict[str, torch.Tensor] = {}
    channels = [3] + [features] * (convs + 1)
    for layer, (cin, cout) in enumerate(zip(channels, channels[1:], strict=False)):
        state[f"body.{2 * layer}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * 0.2
        state[f"body.{2 * layer}.bias"] = torch.zeros(cout)
        state[f"body.{2 * layer + 1}.weight"] = torch.full((cout,), 0.25)
    last = 2 * (convs + 1)
    state[f"body.{last}.weight"] = torch.randn(3 * scale**2, features, 3, 3, generator=generator)
    state[f"body.{last}.bias"] = torch.zeros(3 * scale**2)
    return state


@pytest.mark.parametrize(
    "convs,published", [(32, GENERAL_X4V3_PARAMETERS), (16, ANIMEVIDEO_V3_PARAMETERS)]
)
def test_compact_models_have_the_published_parameter_counts(convs, published):
    network = srnets.from_state_dict(compact_state(features=64, convs=convs))
    assert (network.architecture, network.scale) == ("Compact", 4)
    assert sum(p.numel() for p in network.module.parameters()) == published


def test_compact_is_its_nearest_neighbour_residual_when_the_last_conv_is_zero():
    state = compact_state()
    x = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        learned = srnets.from_state_dict(dict(state))
        assert (learned.architecture, learned.scale, learned.features) == ("Compact", 4, 8)
        residual = F.interpolate(x, scale_factor=4, mode="nearest")
        assert not torch.allclose(learned(x), residual), "The body changes nothing: no check."
        last = max(int(key.split(".")[1]) for key in state)
        state[f"body.{last}.weight"] = torch.zeros_like(state[f"body.{last}.weight"])
        silent = srnets.from_state_dict(state)
        torch.testing.assert_close(silent(x), residual)


def test_half_precision_and_device_are_applied(tmp_path):
    path = esrgan.save_state_dict(tiny_state(), tmp_path / "t.safetensors", kind="test")
    network = esrgan.load(path, half=True)
    assert network.dtype == torch.float16 and network.device.type == "cpu"
    assert esrgan.load(path).dtype == torch.float32


class Exploit:
    """Unpickling this would create ``marker``; torch's weights_only loader must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pth_file_cannot_run_code_while_loading(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "code.pth"
    path.write_bytes(pickle.dumps({"conv_first.weight": Exploit(marker)}, protocol=2))
    with pytest.raises(ValidationError, match="esrgan weights: could not read code.pth"):
        esrgan.load(path)
    assert not marker.exists(), "Loading a .pth ran code from the file."


def conv_ups(count: int) -> dict[str, torch.Tensor]:
    """``count`` upsampling convolutions for the 8-feature test RRDB."""
    ups = {}
    for index in range(1, count + 1):
        ups[f"conv_up{index}.weight"] = torch.zeros(8, 8, 3, 3)
        ups[f"conv_up{index}.bias"] = torch.zeros(8)
    return ups


def without(state: dict, prefix: str) -> dict:
    return {key: value for key, value in state.items() if not key.startswith(prefix)}


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("list.pth", [torch.zeros(3)], "could not read list.pth: it holds a list"),
        ("empty.pth", {}, "empty.pth: it does not hold a state dict of tensors"),
        ("strings.pth", {"conv_first.weight": "x"}, "does not hold a state dict of tensors"),
        (
            "swinir.pth",
            {"layers.0.norm1.weight": torch.zeros(4)},
            "no supported architecture. Supported: ESRGAN",
        ),
        (
            "plus.pth",
            {"model.1.sub.0.RDB1.conv1x1.weight": torch.zeros(1)},
            "ESRGAN\\+ models are not supported",
        ),
        (
            "short.pth",
            without(tiny_state(), "body.1.rdb3"),
            "weights do not fit the architecture: Missing key",
        ),
        ("lost.pth", without(tiny_state(), "conv_last"), "lacks its first, last or dense"),
        (
            "x1.pth",
            {**tiny_state(), "conv_first.weight": torch.zeros(8, 48, 3, 3)},
            "an x1 ESRGAN model; GemPix runs x2 to x8 super-resolution",
        ),
        (
            "x16.pth",
            {**tiny_state(), **conv_ups(4)},
            "an x16 ESRGAN model",
        ),
        (
            "empty-conv.pth",
            {**tiny_state(), "conv_last.weight": torch.zeros(0, 8, 3, 3)},
            "lacks its first, last or dense",
        ),
        (
            "odd.pth",
            {**tiny_state(), "conv_first.weight": torch.zeros(8, 5, 3, 3)},
            "takes 5 channels for 3 out",
        ),
        ("gap.pth", without(without(compact_state(), "body.2."), "body.3."), "do not fit"),
        ("even.pth", without(compact_state(), "body.6."), "looks like SRVGGNetCompact but"),
    ],
)
def test_files_that_are_not_a_supported_upscaler_are_refused_clearly(
    tmp_path, name, content, message
):
    path = tmp_path / name
    torch.save(content, path)
    with pytest.raises(ValidationError, match=message) as caught:
        esrgan.load(path)
    assert caught.value.message.startswith("esrgan weights: ") and name in caught.value.message


def test_a_truncated_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file(tiny_state(), path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValidationError, match="could not read cut.safetensors"):
        esrgan.load(path)
