"""The diffusion detail pass: image-to-image at low strength, tile by tile, on the upscaled image.

After a plain upscale the picture has the right size but soft detail. Re-noising it a little
and denoising with the same model and prompt, one model-sized tile at a time, adds detail the
model can draw at its native resolution, the way established tiled upscalers refine. It uses
the loaded model's image-to-image view (``pipeline.img2img_pipeline``: no second copy of the
weights), calls it through ``pipeline.call_pipeline`` like every call, and takes the model's
lock per tile, so generations of other users interleave with a long pass instead of waiting
for all of it. A ``DetailJob`` is the upscaler's refiner (``upscale.Refiner``): the service
hands it to the upscaler, which needs no model of its own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from PIL import Image

from .adapters import pipeline_kwargs
from .models import LoadedModel
from .pipeline import call_pipeline, img2img_pipeline
from .tiling import Progress, tile_count, tiled_apply, to_uint8

DEFAULT_STRENGTH = 0.3
MIN_TILE = 256  # below this a tile holds too little context for any model


@dataclasses.dataclass(frozen=True)
class DetailJob:
    """What the detail pass needs: the loaded model and the prompt the image was made with."""

    loaded: LoadedModel
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 4
    guidance: float = 0.0
    strength: float = DEFAULT_STRENGTH

    @classmethod
    def from_plan(cls, loaded: LoadedModel, plan: Any, index: int = 0) -> DetailJob:
        return cls(
            loaded=loaded,
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            seed=plan.seeds[index],
            steps=plan.steps,
            guidance=plan.guidance,
        )

    @property
    def tile(self) -> int:
        native = max(self.loaded.preset.native)
        multiple = self.loaded.preset.size_multiple
        side = max(native, MIN_TILE)
        return side - side % multiple

    @property
    def overlap(self) -> int:
        return self.tile // 8

    @property
    def inference_steps(self) -> int:
        """Steps to ask the scheduler for, so that steps x strength denoises at least once."""
        return max(self.steps, math.ceil(1 / self.strength))

    def tiles(self, size: tuple[int, int]) -> int:
        width, height = size
        return tile_count(height, width, self.tile, self.overlap, self.loaded.preset.size_multiple)

    def params(self, size: tuple[int, int]) -> dict[str, Any]:
        return {
            "strength": self.strength,
            "steps": self.inference_steps,
            "guidance": self.guidance,
            "seed": self.seed,
            "tile": self.tile,
            "overlap": self.overlap,
            "tiles": self.tiles(size),
        }

    def refine(
        self,
        image: Image.Image,
        progress: Progress | None = None,
        done_before: int = 0,
        total: int | None = None,
    ) -> Image.Image:
        """Run the detail pass over ``image`` (same size out), reporting progress per tile."""
        import torch

        if not 0 < self.strength <= 1:
            raise ValueError(f"detail strength must be in (0, 1], got {self.strength}")
        loaded = self.loaded
        pipe = img2img_pipeline(loaded)
        multiple = loaded.preset.size_multiple
        counter = iter(range(1 << 30))

        def denoise(tile: np.ndarray) -> np.ndarray:
            height, width, _ = tile.shape
            pad_h, pad_w = -height % multiple, -width % multiple
            if pad_h or pad_w:
                tile = np.pad(tile, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
            picture = Image.fromarray(to_uint8(tile))
            generator = torch.Generator("cpu").manual_seed(self.seed + next(counter))
            kwargs = dict(
                prompt=self.prompt,
                negative_prompt=self.negative_prompt or None,
                image=picture,
                strength=self.strength,
                num_inference_steps=self.inference_steps,
                guidance_scale=self.guidance,
                generator=generator,
                output_type="np",
            )
            with loaded.lock, torch.inference_mode():
                kwargs.update(pipeline_kwargs(loaded, None, self.guidance))  # adapters: off
                result = call_pipeline(pipe, kwargs)[0]
            return np.asarray(result, dtype=np.float32)[:height, :width]

        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        out = tiled_apply(
            pixels,
            denoise,
            scale=1,
            tile=self.tile,
            overlap=self.overlap,
            progress=progress,
            done_before=done_before,
            total=total,
            multiple=multiple,
        )
        return Image.fromarray(out)
