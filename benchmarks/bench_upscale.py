"""4K upscaling on this machine: time and peak memory per backend, tiled against untiled.

    python benchmarks/bench_upscale.py           # full-size Real-ESRGAN x4plus architecture
    python benchmarks/bench_upscale.py --quick   # the tiny ESRGAN instead (seconds, not minutes)
    python benchmarks/bench_upscale.py --smoke   # tiny ESRGAN, 640x360 instead of 4K (CI)

The base image is what SD-Turbo generates for 4K 16:9 (680x384); the target is 3840x2160.
Every measurement runs in its own process, started fresh, and reads its own peak RSS from
``VmHWM`` in /proc/self/status (``ru_maxrss`` of a child also counts the parent's memory at
fork time, before exec). "Above weights" is that peak minus the process's RSS after imports and
model load, which is what the issue's target bounds: a 4K ``esrgan`` upscale under 4 GiB above
the weights.

The ESRGAN is Real-ESRGAN x4plus's architecture (RRDB, 23 blocks, 64 features, x4) with random
weights built from a seed (the real weights are not downloaded here); time and memory depend
on the architecture, not the weights. The tiled/untiled pair runs on a 256x256 image, small
enough for one piece, and reports the largest pixel difference along tile borders.
The diffusion ``detail`` pass is not measured here (it is the model's own img2img, per tile).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = (3840, 2160)
SEAM_SIZE = 256
SEAM_TILE = 160
SMOKE = ((640, 360), 96, 64)  # --smoke: target, seam test size and tile
GIB = 1024**3


def picture(width: int, height: int, seed: int = 0):
    """Smooth colour fields plus grain, like a generated image (deterministic)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=int)
    grain = rng.integers(-20, 21, (height, width, 3))
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def memory_status(field: str) -> int:
    """Bytes of ``field`` (VmRSS, VmHWM) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(spec: dict) -> dict:
    """One measurement, in this (fresh) process."""
    from gempix.engine.upscale import UPSCALE_INFO, Upscaler

    weights = spec.get("weights")
    upscaler = Upscaler(weights, use_default=False, tile=spec.get("tile"))
    if spec["backend"] == "esrgan":
        upscaler.model()
    image = picture(*spec["size"])
    loaded_rss = memory_status("VmRSS")
    started = time.perf_counter()
    result = upscaler.upscale(image, tuple(spec["target"]), spec["backend"])
    seconds = time.perf_counter() - started
    if spec.get("save"):
        np.save(spec["save"], np.asarray(result))
    info = result.info[UPSCALE_INFO]
    peak_rss = memory_status("VmHWM")
    return {"seconds": seconds, "loaded_rss": loaded_rss, "peak_rss": peak_rss, "info": info}


def measure(spec: dict) -> dict:
    """Run ``child(spec)`` in a new interpreter and return what it measured."""
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed: {spec}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def border_mask(length_w: int, length_h: int, tile: int, overlap: int, scale: int) -> np.ndarray:
    from gempix.engine.tiling import axis_tiles

    reach = 16 * scale
    mask = np.zeros((length_h * scale, length_w * scale), dtype=bool)
    for axis, length in ((1, length_w), (0, length_h)):
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


def encodes(target: tuple[int, int]) -> list[tuple[str, float, float]]:
    """Seconds and MB to encode a ``target`` image: PNG at GemPix's level and Pillow's, JPEG,
    WebP."""
    from PIL import Image

    from gempix.metadata import PNG_COMPRESS_LEVEL

    image = picture(680, 384).resize(target, Image.Resampling.LANCZOS)
    rows = []
    cases = [
        (f"PNG level {PNG_COMPRESS_LEVEL} (GemPix)", "PNG", {"compress_level": PNG_COMPRESS_LEVEL}),
        ("PNG level 6 (Pillow default)", "PNG", {"compress_level": 6}),
        ("JPEG q90 4:4:4", "JPEG", {"quality": 90, "subsampling": 0}),
        ("JPEG q80 4:2:0", "JPEG", {"quality": 80, "subsampling": 2}),
        ("WebP q90 method 4", "WEBP", {"quality": 90, "method": 4}),
    ]
    for label, fmt, options in cases:
        best = float("inf")
        for _ in range(2):
            buffer = io.BytesIO()
            started = time.perf_counter()
            image.save(buffer, fmt, **options)
            best = min(best, time.perf_counter() - started)
        rows.append((label, best, buffer.tell() / 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny ESRGAN instead of full size")
    parser.add_argument("--smoke", action="store_true", help="tiny ESRGAN, small sizes (seconds)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    with tempfile.TemporaryDirectory(prefix="gempix-bench-upscale-") as temporary:
        run(Path(temporary), args.quick or args.smoke, args.smoke)


def run(work: Path, quick: bool, smoke: bool) -> None:
    """Every measurement, with the models, images and arrays it makes kept in ``work``."""
    from gempix.engine import esrgan
    from gempix.engine.sizes import base_size
    from gempix.engine.upscale import DEFAULT_OVERLAP

    target, seam_size, seam_tile = SMOKE if smoke else (TARGET, SEAM_SIZE, SEAM_TILE)
    if quick:
        weights = esrgan.build_tiny_esrgan(work / "tiny-esrgan.safetensors")
        label = "tiny ESRGAN (8 features, 1 block)"
    else:
        print("building Real-ESRGAN x4plus architecture, random weights...", flush=True)
        weights = esrgan.build_full_esrgan(work / "esrgan-x4plus-arch.safetensors")
        label = "Real-ESRGAN x4plus architecture (64 features, 23 blocks)"
    weights_mib = weights.stat().st_size / 1024**2
    base = (target[0] // 4, target[1] // 4) if smoke else base_size("16:9", (512, 512), 8)
    size = "4K" if target == TARGET else f"{target[0]}x{target[1]}"
    print(f"ESRGAN: {label}, {weights_mib:.0f} MiB of weights")
    print(f"{size} 16:9: base {base[0]}x{base[1]} -> {target[0]}x{target[1]}\n", flush=True)

    rows = []
    for backend in ("lanczos", "esrgan"):
        spec = {"backend": backend, "size": base, "target": target, "weights": str(weights)}
        result = measure(spec)
        rows.append((f"{size} {backend}", result))
        print(f"  measured {size} {backend}: {result['seconds']:.1f} s", flush=True)

    scale = 4
    seam_target = (seam_size * scale, seam_size * scale)
    outputs = {}
    for name, tile in (("untiled", 4096), ("tiled", seam_tile)):
        spec = {
            "backend": "esrgan",
            "size": (seam_size, seam_size),
            "target": seam_target,
            "weights": str(weights),
            "tile": tile,
            "save": str(work / f"{name}.npy"),
        }
        result = measure(spec)
        outputs[name] = np.load(work / f"{name}.npy").astype(int)
        rows.append((f"{seam_size}px {name}", result))
        print(f"  measured {seam_size}px {name}: {result['seconds']:.1f} s", flush=True)

    print(
        "\n| case | tiles x size | model input px | seconds | peak RSS MiB | "
        "above weights MiB | above weights < 4 GiB |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, result in rows:
        model = result["info"].get("esrgan")
        if model:
            width, height = model["tile_size"]
            tiles = f"{model['tiles']} x {width}x{height}"
            result["model_px"] = model["tiles"] * width * height
        above = result["peak_rss"] - result["loaded_rss"]
        print(
            f"| {name} | {tiles if model else '-'} | {result.get('model_px', '-')} | "
            f"{result['seconds']:.1f} | {result['peak_rss'] / 1024**2:.0f} | "
            f"{above / 1024**2:.0f} | {'yes' if above < 4 * GIB else 'NO'} |"
        )
    tiled, untiled = rows[-1][1], rows[-2][1]
    tiled_above = tiled["peak_rss"] - tiled["loaded_rss"]
    untiled_above = untiled["peak_rss"] - untiled["loaded_rss"]
    difference = np.abs(outputs["tiled"] - outputs["untiled"]).max(axis=2)
    mask = border_mask(seam_size, seam_size, seam_tile, DEFAULT_OVERLAP, scale)
    print(
        f"\ntiled/untiled on {seam_size}x{seam_size} (tile {seam_tile}, overlap "
        f"{DEFAULT_OVERLAP}): model input pixels x{tiled['model_px'] / untiled['model_px']:.2f}, "
        f"time x{tiled['seconds'] / untiled['seconds']:.2f}, "
        f"memory above weights x{tiled_above / untiled_above:.2f}; "
        f"max |difference| along tile borders {difference[mask].max()} / 255 "
        f"(mean {difference[mask].mean():.3f}), elsewhere {difference[~mask].max()} / 255"
    )

    print(f"\n| {size} encode | seconds | MB |")
    print("|---|---|---|")
    for label, seconds, megabytes in encodes(target):
        print(f"| {label} | {seconds:.2f} | {megabytes:.1f} |")


if __name__ == "__main__":
    main()
