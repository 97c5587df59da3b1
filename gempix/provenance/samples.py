"""Sample pictures for the watermark's tests and benchmark, made locally, nothing downloaded,
and the copies a mark must survive (issue 20: JPEG quality 75, a 50 % resize, a 10 % crop).

Photographs: the JPEGs Gradio (a GemPix dependency) ships in its package, halved first (a box
filter that removes their JPEG block grid, which a generated image does not have) and then
resized to the size asked for, as GemPix's upscaler enlarges a 512 px generation. Textures:
seeded 1/f noise in colour, the spectrum natural images have on average.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOGRAPHS = (
    "test_data/cheetah2.jpg",
    "media_assets/images/groot.jpeg",
    "media_assets/images/tower.jpg",
    "media_assets/images/cheetah.jpg",
    "media_assets/images/lion.jpg",
)


def _gradio_folder() -> Path:
    spec = importlib.util.find_spec("gradio")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("gradio is not installed; its sample photographs are used")
    return Path(spec.origin).parent


def photograph(index: int, size: int) -> Image.Image:
    """Photograph ``index`` of ``PHOTOGRAPHS`` as a ``size`` x ``size`` RGB image."""
    with Image.open(_gradio_folder() / PHOTOGRAPHS[index]) as source:
        picture = source.convert("RGB")
    picture = picture.resize((max(1, picture.width // 2), max(1, picture.height // 2)), Image.BOX)
    return picture.resize((size, size), Image.LANCZOS)


def texture(seed: int, size: int) -> Image.Image:
    """Colour 1/f noise, ``size`` x ``size``, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    frequencies = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
    frequencies[0, 0] = 1.0
    channels = []
    for _ in range(3):
        noise = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
        spectrum = noise / frequencies
        channel = np.real(np.fft.ifft2(spectrum))
        channels.append((channel - channel.mean()) / channel.std())
    pixels = np.clip(np.stack(channels, axis=-1) * 40 + 128, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def samples(size: int, textures: int = 2) -> list[tuple[str, Image.Image]]:
    """Every photograph and ``textures`` textures, named, at ``size`` px."""
    named = [(Path(name).stem, photograph(i, size)) for i, name in enumerate(PHOTOGRAPHS)]
    return named + [(f"texture{seed}", texture(seed, size)) for seed in range(textures)]


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    """The image after a JPEG round trip at ``quality``."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def halve(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.BICUBIC)


def crop10(image: Image.Image) -> Image.Image:
    """Keep 90 % of each side (19 % of the area gone), off-centre so the tile grid moves."""
    width, height = image.size
    left, top = width // 20 + 3, height // 20 + 1
    return image.crop((left, top, left + width * 9 // 10, top + height * 9 // 10))


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda image: image,
    "jpeg75": jpeg,
    "resize50": halve,
    "crop10": crop10,
    "all three": lambda image: jpeg(halve(crop10(image))),
}
