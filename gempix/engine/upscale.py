"""Bringing a base image to its exact target size.

Lanczos (Pillow) is always available and needs no model; ``auto`` picks the best backend
available, which today is Lanczos. Memory is bounded by the output image itself.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

BACKENDS = ("lanczos",)


def upscale(
    image: Image.Image,
    target: tuple[int, int],
    backend: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
) -> Image.Image:
    result = image.resize(target, Image.Resampling.LANCZOS)
    if progress is not None:
        progress(1, 1, "upscale")
    return result


def resolved_backend(backend: str) -> str:
    return BACKENDS[0] if backend == "auto" else backend
