"""4K output: exact sizes through the real weights loader, seamless tiles, progress, bad input.

The ESRGAN here is the tiny model's upscaler: Real-ESRGAN's RRDB architecture with one block
and random weights, saved with Real-ESRGAN's key names and loaded by the same architecture
detection as the real x4plus file (tests/test_srnets.py tests the networks themselves).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gempix.engine import esrgan
from gempix.engine.request import GenerationRequest
from gempix.engine.tiling import axis_tiles, choose_tile, ramp
from gempix.engine.upscale import UPSCALE_INFO, Upscaler, default_upscaler, upscale_target
from gempix.errors import ModelUnavailableError, NotFoundError, ValidationError
from gempix.export import export_image
from gempix.metadata import AI_SOURCE_TYPE, save_png

# Tiled and untiled results may differ by float rounding only: one 8-bit level.
SEAM_TOLERANCE = 1


@pytest.fixture(scope="module")
def tiny_esrgan(tmp_path_factory) -> Path:
    return esrgan.build_tiny_esrgan(tmp_path_factory.mktemp("esrgan") / "tiny.safetensors")


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields plus grain: structure at every scale, like a generated image."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=int)
    grain = rng.integers(-20, 21, (height, width, 3))
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def test_tiny_esrgan_is_deterministic_and_loads_as_real_esrgan(tiny_esrgan, tmp_path):
    again = esrgan.build_tiny_esrgan(tmp_path / "again.safetensors")
    assert again.read_bytes() == tiny_esrgan.read_bytes(), "Two builds of tiny ESRGAN differ."
    model = esrgan.load(tiny_esrgan)
    assert model.architecture == "ESRGAN"
    assert model.scale == 4
    assert model.features == esrgan.TINY_FEATURES
    assert len(model.module.body) == esrgan.TINY_BLOCKS


@pytest.mark.parametrize("target", [(3840, 2160), (2160, 3840), (3001, 2001)])
def test_esrgan_gives_exactly_the_target_size(tiny_esrgan, target):
    base = picture(88, 48) if target[0] > target[1] else picture(48, 88)
    result = Upscaler(tiny_esrgan, use_default=False).upscale(base, target, "esrgan")
    assert result.size == target
    info = result.info[UPSCALE_INFO]
    assert info["backend"] == "esrgan"
    assert info["esrgan"]["scale"] == 4
    assert info["esrgan"]["weights"] == tiny_esrgan.name
    assert info["resize"] == "lanczos"  # x4 gives 352x192; Lanczos brings it to the target


def test_a_4k_request_through_the_service_uses_the_tiny_esrgan(studio):
    """4K 16:9 from the tiny model: generated at 88x48, x4 by ESRGAN, then exactly 3840x2160."""
    weights = studio.settings.models_dir / "tiny" / esrgan.TINY_ESRGAN_FILE
    if not weights.is_file():  # a tiny build from before it carried an upscaler
        esrgan.build_tiny_esrgan(weights)
    stages = []
    result = studio.generate(
        GenerationRequest("a lighthouse", seed=3, aspect="16:9", resolution="4k"),
        progress=lambda done, total, stage: stages.append(stage),
    )
    image = result.images[0]
    with Image.open(image.path) as stored:
        assert stored.size == (3840, 2160)
    assert (image.width, image.height) == (3840, 2160)
    assert image.params["upscaler"] == "esrgan"
    assert image.params["upscale"]["esrgan"]["architecture"] == "ESRGAN"
    assert image.params["upscale"]["source_size"] == [88, 48]
    assert "upscale" in stages


def test_upscaling_an_existing_generation_makes_a_new_linked_one(studio):
    weights = studio.settings.models_dir / "tiny" / esrgan.TINY_ESRGAN_FILE
    if not weights.is_file():
        esrgan.build_tiny_esrgan(weights)
    source = studio.generate(GenerationRequest("a lighthouse", seed=4)).images[0]
    result = studio.upscale(source.id, width=600, height=400, upscaler="esrgan")
    image = result.images[0]
    assert (image.width, image.height) == (600, 400)
    assert image.id != source.id and image.path.is_file() and source.path.is_file()
    row = studio.store.get_generation("local", image.id)
    assert row["source_id"] == source.id
    assert row["params"]["upscale"]["esrgan"]["scale"] == 4
    assert row["params"]["seed"] == source.seed == 4
    with pytest.raises(NotFoundError):
        studio.upscale("no-such-generation")


def test_auto_picks_esrgan_when_its_weights_are_here_else_lanczos(tiny_esrgan, tmp_path):
    assert Upscaler(tiny_esrgan, use_default=False).resolve("auto") == "esrgan"
    assert Upscaler(use_default=False).resolve("auto") == "lanczos"
    # The default weights are not in this test's empty Hub cache.
    assert Upscaler().resolve("auto") == "lanczos"
    result = default_upscaler().upscale(picture(64, 64), (256, 256), "auto")
    assert result.size == (256, 256)
    assert result.info[UPSCALE_INFO]["backend"] == "lanczos"


def border_mask(size: tuple[int, int], tile: int, overlap: int, scale: int) -> np.ndarray:
    """Output pixels within 16 input pixels of an inner tile edge (where seams would show)."""
    width, height = size
    reach = 16 * scale
    mask = np.zeros((height * scale, width * scale), dtype=bool)
    for axis, length in ((1, width), (0, height)):
        size, starts = axis_tiles(length, tile, overlap)
        for start in starts:
            for edge in (start, start + size):
                if 0 < edge < length:
                    band = slice(max(0, edge * scale - reach), edge * scale + reach)
                    if axis:
                        mask[:, band] = True
                    else:
                        mask[band, :] = True
    return mask


def test_tiled_matches_untiled_along_tile_borders(tiny_esrgan):
    """Habit 7: tiled against untiled; without overlap the same check finds the seams."""
    image = picture(96, 80)
    whole = Upscaler(tiny_esrgan, use_default=False, tile=512).upscale(image, (384, 320), "esrgan")
    assert whole.info[UPSCALE_INFO]["esrgan"]["tiles"] == 1
    expected = np.asarray(whole, dtype=int)

    def border_error(tile: int, overlap: int) -> int:
        upscaler = Upscaler(tiny_esrgan, use_default=False, tile=tile, overlap=overlap)
        tiled = upscaler.upscale(image, (384, 320), "esrgan")
        assert tiled.info[UPSCALE_INFO]["esrgan"]["tiles"] > 1
        difference = np.abs(np.asarray(tiled, dtype=int) - expected).max(axis=2)
        mask = border_mask(image.size, tile, overlap, 4)
        assert mask.any()
        assert difference[~mask].max() <= SEAM_TOLERANCE, "Tiles differ away from their borders."
        return int(difference[mask].max())

    assert border_error(tile=48, overlap=16) <= SEAM_TOLERANCE
    assert border_error(tile=48, overlap=0) > 10 * SEAM_TOLERANCE, "A seam went undetected."


def test_progress_is_reported_once_per_tile(tiny_esrgan):
    calls = []
    upscaler = Upscaler(tiny_esrgan, use_default=False, tile=32, overlap=8)
    result = upscaler.upscale(
        picture(88, 48), (704, 384), "esrgan", lambda *call: calls.append(call)
    )
    tiles = result.info[UPSCALE_INFO]["esrgan"]["tiles"]
    assert tiles == 4 * 2  # 28-pixel tiles at 0, 20, 40, 60 across and 0, 20 down
    assert calls == [(done, tiles, "upscale") for done in range(1, tiles + 1)]


def test_lanczos_reports_one_step(tiny_esrgan):
    calls = []
    default_upscaler().upscale(
        picture(64, 64), (128, 128), "lanczos", lambda *call: calls.append(call)
    )
    assert calls == [(1, 1, "upscale")]


def test_tile_size_adapts_to_memory(tiny_esrgan, monkeypatch):
    assert choose_tile(64 * 1024**2, 16_000) < choose_tile(2 * 1024**3, 16_000)
    assert choose_tile(0, 16_000) == 64  # never below the minimum tile
    assert choose_tile(10**15, 1) == 1024  # nor above the maximum

    from gempix.engine import upscale as module

    monkeypatch.setattr(module, "memory_budget", lambda device: 64 * 64 * 4_000)
    result = Upscaler(tiny_esrgan, use_default=False).upscale(picture(88, 48), (352, 192))
    assert result.info[UPSCALE_INFO]["esrgan"]["tile"] == 64
    assert result.info[UPSCALE_INFO]["esrgan"]["tiles"] == 2


def test_feather_weights_cross_fade_to_one():
    left = ramp(64, fade_start=False, fade_end=True, overlap=32, margin=8)
    right = ramp(64, fade_start=True, fade_end=False, overlap=32, margin=8)
    # Two tiles overlapping by exactly 32: the weights of the shared pixels sum to 1.
    assert np.allclose(left[-32:] + right[:32], 1.0)
    assert left[-8:].max() == 0.0 and right[:8].max() == 0.0  # edge margins are dropped
    assert left[0] == 1.0 and right[-1] == 1.0  # image borders are not faded


def test_detail_pass_redraws_tiles_with_the_loaded_model(shared_studio):
    from gempix.engine.detail import DetailJob

    loaded = shared_studio.model()
    job = DetailJob(loaded, prompt="a lighthouse", seed=5, steps=2, guidance=0.0)
    calls = []
    base = picture(64, 64)
    upscaler = Upscaler(use_default=False)
    result = upscaler.upscale(base, (320, 320), "detail", lambda *c: calls.append(c), job)
    assert result.size == (320, 320)
    info = result.info[UPSCALE_INFO]
    assert info["backend"] == "detail"
    assert info["detail"]["tiles"] == 4 and info["detail"]["tile"] == 256
    assert calls == [(done, 5, "upscale") for done in range(1, 6)]  # resize + 4 tiles
    plain = np.asarray(base.resize((320, 320), Image.Resampling.LANCZOS), dtype=int)
    assert np.abs(np.asarray(result, dtype=int) - plain).mean() > 1, "Detail pass changed nothing."


BAD_REQUESTS = [
    (dict(width=0, height=512), "width: 0 is out of range; allowed 64 to 4096"),
    (dict(width=512, height=-64), "height: -64 is out of range; allowed 64 to 4096"),
    (dict(width=5000, height=5000), "width: 5000 is out of range; allowed 64 to 4096"),
    (dict(width=4097, height=2160), "width: 4097 is out of range"),
    (dict(width=4096.5, height=2160), "width: expected a whole number"),
    (dict(aspect="16:10"), "aspect: '16:10' is not supported"),
    (dict(aspect="wide"), "aspect: 'wide' is not supported"),
    (dict(aspect="16:9:1"), "aspect: '16:9:1' is not supported"),
    (dict(aspect=""), "aspect: '' is not supported"),
    (dict(upscaler="magic"), "upscaler: 'magic' is not available; choose one of auto, lanczos"),
    (dict(upscaler=""), "upscaler: '' is not available"),
    (dict(upscaler=None), "upscaler: None is not available"),
    (dict(resolution="8k", aspect="16:9"), "resolution: '8k' is not supported"),
]


@pytest.mark.parametrize("fields,message", BAD_REQUESTS, ids=[m[:40] for _, m in BAD_REQUESTS])
def test_bad_size_aspect_or_upscaler_is_refused_clearly(shared_studio, fields, message):
    request = GenerationRequest(**{"prompt": "a lighthouse", **fields})
    with pytest.raises(ValidationError) as caught:
        shared_studio.generate(request)
    assert message in caught.value.message


def test_custom_sizes_up_to_4096_are_generated_small_and_upscaled(shared_studio):
    from gempix.engine.request import plan

    preset = shared_studio.model().preset
    resolved = plan(GenerationRequest("x", width=4096, height=4096), preset)
    assert resolved.target == (4096, 4096) and (resolved.width, resolved.height) == (64, 64)
    odd = plan(GenerationRequest("x", width=3001, height=2001), preset)
    assert odd.target == (3001, 2001) and odd.width <= 2048 and odd.upscaled


BAD_UPSCALES = [
    (dict(target=(0, 100)), "target width: 0 is out of range; allowed 1 to 4096"),
    (dict(target=(5000, 5000)), "target width: 5000 is out of range"),
    (dict(target=(100, 4097)), "target height: 4097 is out of range"),
    (dict(target=(100,)), "target size: expected (width, height)"),
    (dict(backend="nearest"), "upscaler: 'nearest' is not available"),
    (dict(backend="detail"), "detail needs the model that made the image"),
]


@pytest.mark.parametrize("fields,message", BAD_UPSCALES, ids=[m[:30] for _, m in BAD_UPSCALES])
def test_bad_upscale_arguments_are_refused_clearly(fields, message):
    arguments = {"target": (128, 128), "backend": "lanczos", **fields}
    with pytest.raises(ValidationError) as caught:
        default_upscaler().upscale(picture(64, 64), arguments["target"], arguments["backend"])
    assert message in caught.value.message


def test_upscale_target_for_an_existing_image():
    assert upscale_target((1024, 576), "4k") == (3840, 2160)
    assert upscale_target((576, 1024), "2k") == (1440, 2560)
    assert upscale_target((10, 10), None, 4096, 4096) == (4096, 4096)
    for args, message in [
        (("native",), "upscaling needs 2k or 4k"),
        (("16k",), "resolution: '16k' is not supported"),
        ((None, 5000, 5000), "width: 5000 is out of range"),
        ((None, 512, None), "give both width and height"),
    ]:
        with pytest.raises(ValidationError, match=message):
            upscale_target((512, 512), *args)


def test_missing_or_unreadable_weights_fail_clearly(tmp_path):
    with pytest.raises(ValidationError, match="esrgan weights: no such file"):
        Upscaler(tmp_path / "nope.safetensors").upscale(picture(64, 64), (256, 256), "esrgan")
    text = tmp_path / "notes.safetensors"
    text.write_text("not a model")
    with pytest.raises(ValidationError, match="esrgan weights: could not read notes"):
        Upscaler(text).upscale(picture(64, 64), (256, 256), "esrgan")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(ValidationError, match="not a model file"):
        Upscaler(other).upscale(picture(64, 64), (256, 256), "esrgan")


def test_explicit_esrgan_offline_fails_at_once_with_a_download_hint():
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as caught:
        Upscaler(hub_timeout=30).upscale(picture(64, 64), (256, 256), "esrgan")
    assert time.perf_counter() - started < 5, "An offline download attempt did not fail fast."
    assert "gempix download esrgan" in caught.value.message
    assert caught.value.status == 503


def test_tiny_model_never_borrows_the_real_esrgan():
    with pytest.raises(ModelUnavailableError, match="this model has no ESRGAN upscaler"):
        Upscaler(use_default=False).upscale(picture(64, 64), (256, 256), "esrgan")


@pytest.fixture(scope="module")
def stored_png(tmp_path_factory) -> Path:
    params = {"prompt": "a lighthouse", "seed": 1, "steps": 2, "width": 640, "height": 360}
    folder = tmp_path_factory.mktemp("export")
    return save_png(picture(640, 360), folder / "image.png", params, include_prompt=True)


@pytest.mark.parametrize("fmt,pil_format", [("jpeg", "JPEG"), ("JPG", "JPEG"), ("webp", "WEBP")])
def test_export_keeps_size_and_the_ai_disclosure(stored_png, fmt, pil_format):
    data = export_image(stored_png, fmt, quality=85)
    with Image.open(io.BytesIO(data)) as exported:
        assert exported.format == pil_format
        assert exported.size == (640, 360)
        assert AI_SOURCE_TYPE.encode() in exported.info["xmp"]
        comment = exported.getexif().get_ifd(0x8769)[0x9286]
        assert "a lighthouse" in comment[8:].decode("utf-16-be")


def test_export_quality_changes_the_size_and_png_is_untouched(stored_png):
    assert len(export_image(stored_png, "jpeg", 30)) < len(export_image(stored_png, "jpeg", 95))
    assert export_image(stored_png, "png") == stored_png.read_bytes()


@pytest.mark.parametrize(
    "fmt,quality,message",
    [
        ("gif", 90, "format: 'gif' is not supported"),
        ("jpeg", 0, "quality: expected a whole number from 1 to 100, got 0"),
        ("webp", 101, "got 101"),
        ("jpeg", "high", "got 'high'"),
    ],
)
def test_export_bad_format_or_quality(stored_png, fmt, quality, message):
    with pytest.raises(ValidationError, match=message):
        export_image(stored_png, fmt, quality)
