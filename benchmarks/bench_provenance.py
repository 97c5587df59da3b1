"""Content credentials: watermark robustness and the cost of marking, side by side in one run.

    python benchmarks/bench_provenance.py              # 1024 px samples, SD-Turbo UNet step
    python benchmarks/bench_provenance.py --size 512   # robustness at SD-Turbo's native size
    python benchmarks/bench_provenance.py --smoke      # seconds: 2 samples at 512 px, no UNet

Part 1, robustness. Each watermark marks the same sample pictures (gempix/provenance/
samples.py), each copy is attacked (JPEG quality 75, resize to 50 %, a 10 % crop from each
side pair, all three together), and the table gives the raw bit accuracy of what the detector
reads and how many copies yield the right payload. Candidates: GemPix's tiled mark; the
``invisible-watermark`` package (``imwatermark``, dwtDct and dwtDctSvd, as SDXL uses it) when
it is importable; TrustMark is reported, not run: its weights are fetched from Adobe's CDN
on first use, which this machine cannot reach. Unmarked copies are checked for false
positives too.

Then (full mode) what else a copy may go through, for the GemPix mark only: stronger JPEG,
smaller sizes, a changed aspect ratio, small crops, turns, rotation, blur, noise, colour.

Part 2, cost per 1024 x 1024 image, measured interleaved: watermarking, C2PA signing of the
PNG and of a JPEG, detection, and the total of watermark + sign against the 50 ms target, also
measured as the service runs it (``studio.provenance.save`` minus a plain ``save_png``), next
to a tiny-model generation (which now includes its own credentials) and (full mode) one step
of SD-Turbo's full-size UNet on CPU with random weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, sd_turbo_unet  # noqa: E402

from gempix.params import GenerationRequest  # noqa: E402
from gempix.provenance.samples import COPIES as ATTACKS  # noqa: E402
from gempix.provenance.samples import jpeg, samples  # noqa: E402

PAYLOAD_BITS = 48  # imwatermark carries this many raw bits (it has no check code)


def scaled(factor_x: float, factor_y: float):
    def resize(image: Image.Image) -> Image.Image:
        size = (int(image.width * factor_x), int(image.height * factor_y))
        return image.resize(size, Image.BICUBIC)

    return resize


def corner(fraction: float):
    def crop(image: Image.Image) -> Image.Image:
        return image.crop((0, 0, int(image.width * fraction), int(image.height * fraction)))

    return crop


def noisy(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, np.float64)
    pixels = pixels + np.random.default_rng(0).normal(0, 10, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# What else a copy may go through: where the GemPix mark's limits are (docs/provenance.md).
LIMITS = {
    "JPEG quality 30": lambda image: jpeg(image, 30),
    "resize to 25 %": scaled(0.25, 0.25),
    "resize to 20 %": scaled(0.2, 0.2),
    "stretch to 80 % width": scaled(0.8, 1.0),
    "upscale 2x": scaled(2, 2),
    "keep a 33 % corner": corner(1 / 3),
    "keep a 25 % corner": corner(0.25),
    "quarter turn + mirror": lambda image: image.transpose(Image.Transpose.TRANSVERSE),
    "rotate 0.5 degree": lambda image: image.rotate(0.5, resample=Image.BICUBIC),
    "rotate 5 degrees": lambda image: image.rotate(5, resample=Image.BICUBIC),
    "Gaussian blur 2 px": lambda image: image.filter(ImageFilter.GaussianBlur(2)),
    "noise sigma 10": noisy,
    "contrast 1.3 + brightness 1.1": lambda image: ImageEnhance.Brightness(
        ImageEnhance.Contrast(image).enhance(1.3)
    ).enhance(1.1),
    "greyscale": lambda image: image.convert("L"),
}


class GemPixMark:
    name = "GemPix tiled mark"

    def __init__(self):
        from gempix.provenance import detection, payload, watermark

        self.detection, self.payload, self.watermark = detection, payload, watermark
        self.identifier = 0xC0FFEE12
        self.expected = payload.encode(self.identifier)

    def embed(self, image: Image.Image) -> Image.Image:
        return self.watermark.embed(image, self.identifier)

    def read(self, image: Image.Image) -> tuple[float, bool]:
        soft = self.detection.soft_bits(image)
        accuracy = 0.0 if soft is None else float(np.mean((soft > 0) == (self.expected == 1)))
        return accuracy, self.detection.detect(image).identifier == self.identifier

    def false_positive(self, image: Image.Image) -> bool:
        return self.detection.detect(image).found


class InvisibleWatermark:
    """imwatermark's frequency-domain methods on a random 48-bit payload."""

    def __init__(self, method: str):
        import cv2
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.cv2, self.encoder_class, self.decoder_class = cv2, WatermarkEncoder, WatermarkDecoder
        self.method, self.name = method, f"invisible-watermark {method}"
        self.bits = list(np.random.default_rng(7).integers(0, 2, PAYLOAD_BITS).astype(int))

    def _bgr(self, image: Image.Image) -> np.ndarray:
        return self.cv2.cvtColor(np.asarray(image.convert("RGB")), self.cv2.COLOR_RGB2BGR)

    def embed(self, image: Image.Image) -> Image.Image:
        encoder = self.encoder_class()
        encoder.set_watermark("bits", self.bits)
        marked = encoder.encode(self._bgr(image), self.method)
        return Image.fromarray(self.cv2.cvtColor(marked, self.cv2.COLOR_BGR2RGB))

    def _decode(self, image: Image.Image) -> np.ndarray:
        """The bits read; a copy it refuses (256 px or less) reads as the opposite of each
        payload bit's neighbour, i.e. as chance."""
        try:
            decoder = self.decoder_class("bits", PAYLOAD_BITS)
            return np.array(decoder.decode(self._bgr(image), self.method))
        except RuntimeError:
            return np.resize([0, 1], PAYLOAD_BITS)

    def read(self, image: Image.Image) -> tuple[float, bool]:
        accuracy = float(np.mean(self._decode(image) == np.array(self.bits)))
        return accuracy, accuracy == 1.0

    def false_positive(self, image: Image.Image) -> bool:
        return bool(np.all(self._decode(image) == np.array(self.bits)))


def candidates() -> list:
    marks = [GemPixMark()]
    if importlib.util.find_spec("imwatermark") and importlib.util.find_spec("cv2"):
        marks += [InvisibleWatermark("dwtDct"), InvisibleWatermark("dwtDctSvd")]
    else:
        print("invisible-watermark: not importable here (pip install invisible-watermark).")
    print(
        "TrustMark: not measured. Its pip package ships code only; the model weights are fetched "
        "from Adobe's CDN on first use (unreachable here), and it needs torchvision and lightning."
    )
    return marks


def robustness(marks, pictures) -> None:
    print(f"\nRobustness on {len(pictures)} pictures of {pictures[0][1].size[0]} px")
    print("watermark | PSNR dB | embed ms | " + " | ".join(f"{a} bits/ok" for a in ATTACKS))
    for mark in marks:
        cells, psnrs, embed_ms = {name: [] for name in ATTACKS}, [], []
        false_positives = 0
        for _, picture in pictures:
            started = time.perf_counter()
            marked = mark.embed(picture)
            embed_ms.append((time.perf_counter() - started) * 1000)
            before = np.asarray(picture, np.float64)
            error = np.mean((np.asarray(marked, np.float64) - before) ** 2)
            psnrs.append(10 * np.log10(255**2 / max(error, 1e-9)))
            for name, attack in ATTACKS.items():
                cells[name].append(mark.read(attack(marked)))
                false_positives += mark.false_positive(attack(picture))
        row = [mark.name, f"{np.mean(psnrs):.1f}", f"{np.median(embed_ms):.0f}"]
        for name in ATTACKS:
            accuracy = np.mean([a for a, _ in cells[name]])
            decoded = sum(ok for _, ok in cells[name])
            row.append(f"{accuracy:.2f}/{decoded}of{len(pictures)}")
        print(" | ".join(row) + f" | false positives on unmarked copies: {false_positives}")


def limits(pictures) -> None:
    mark = GemPixMark()
    marked = [mark.embed(picture) for _, picture in pictures]
    print(f"\nBeyond the target: the GemPix mark on {len(pictures)} pictures")
    print("copy | decoded")
    for name, change in LIMITS.items():
        decoded = sum(mark.read(change(picture))[1] for picture in marked)
        print(f"{name} | {decoded}/{len(marked)}")


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 3}))
    return buffer.getvalue()


def costs(picture: Image.Image, runs: int, unet_step: bool) -> None:
    """Each step alone, and the whole of what ``studio.provenance.save`` adds to saving an
    image (watermark + sign; the PNG encoding was paid before content credentials)."""
    from gempix.metadata import save_png
    from gempix.provenance import detect, embed, sign

    studio = tiny_studio()
    credentials = studio.provenance.credentials
    params = {"model": "sd-turbo", "prompt": "a lighthouse at dawn", "seed": 1}
    facts = studio.provenance.facts("local", params)
    png, jpeg = encoded(picture, "PNG"), encoded(picture, "JPEG")
    folder = Path(tempfile.mkdtemp(prefix="gempix-bench-out-"))
    sign(png, facts, credentials)  # warm: first use loads the native library's state
    times = interleaved(
        runs,
        watermark=lambda: embed(picture, 1),
        sign_png=lambda: sign(png, facts, credentials),
        sign_jpeg=lambda: sign(jpeg, facts, credentials),
        save_png=lambda: save_png(picture, folder / "plain.png", params, True),
        studio_save=lambda: studio.provenance.save(picture, folder / "signed.png", params, facts),
        detect=lambda: detect(picture),
    )
    reference = interleaved(
        max(3, runs // 3), generate=lambda: studio.generate(GenerationRequest("a fox", seed=1))
    )["generate"]
    step = sd_turbo_unet_step() if unet_step else None
    total = times["watermark"] + times["sign_png"]
    added = times.pop("studio_save") - times["save_png"]
    print(f"\nCost per {picture.size[0]}x{picture.size[1]} image (median of {runs}, seconds -> ms)")
    print("step | ms | / tiny generation" + (" | / SD-Turbo UNet step" if step else ""))
    rows = [(name, value) for name, value in times.items()]
    rows += [
        ("watermark + sign PNG (target < 50 ms)", total),
        ("studio.provenance.save minus save_png (the same, as the service runs it)", added),
        ("tiny generation (64 px, 2 steps, credentials included)", reference),
    ]
    if step:
        rows.append(("SD-Turbo UNet step, 512 px", step))
    for name, seconds in rows:
        line = f"{name} | {seconds * 1000:.1f} | {seconds / reference:.3f}"
        print(line + (f" | {seconds / step:.4f}" if step else ""))
    signed = sign(png, facts, credentials)
    print(f"PNG grows by {len(signed) - len(png):,} bytes when signed ({len(png):,} before).")
    verdict = "meets" if total < 0.05 else "MISSES"
    print(
        f"watermark + sign: {total * 1000:.1f} ms per 1024x1024 image, {verdict} the 50 ms target"
    )


def tiny_studio():
    """A studio on the tiny model in a fresh data dir, one generation done (model loaded)."""
    from gempix.engine.tiny import ensure_tiny
    from gempix.service import Studio
    from gempix.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="gempix-bench-"))
    ensure_tiny(work / "models" / "tiny")
    studio = Studio(Settings.load({}, data_dir=str(work), model="tiny"))
    studio.generate(GenerationRequest("a fox", seed=1))
    return studio


def sd_turbo_unet_step() -> float:
    """Seconds of one UNet forward at 512 px (64 x 64 latents), SD-Turbo's architecture."""
    import torch

    torch.manual_seed(0)
    unet = sd_turbo_unet().eval()
    latents, text = torch.randn(1, 4, 64, 64), torch.randn(1, 77, 1024)
    with torch.inference_mode():
        unet(latents, 999, encoder_hidden_states=text)  # warm
        return interleaved(2, step=lambda: unet(latents, 999, encoder_hidden_states=text))["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 pictures at 512 px, no UNet")
    parser.add_argument("--size", type=int, default=1024, help="side of the sample pictures")
    args = parser.parse_args()

    pictures = samples(512 if args.smoke else args.size)
    if args.smoke:
        pictures = [pictures[1], pictures[-1]]
    robustness(candidates(), pictures)
    if not args.smoke:
        limits(pictures)
    costs(pictures[0][1].resize((1024, 1024)), 5 if args.smoke else 20, not args.smoke)


if __name__ == "__main__":
    main()
