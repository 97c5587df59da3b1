"""Live previews: each denoising step's latents decoded by a tiny autoencoder into a small image.

The full VAE costs about as much as a denoising step; a TAESD-family ``AutoencoderTiny``
(about 1 M decoder parameters) decodes the same latents to a recognisable preview for a few
percent of a step. Weights: ``madebyollin/taesd`` for SD 1/2 latents, ``madebyollin/taesdxl``
for SDXL, from the Hub (cached once; offline and not cached fails at once with a clear
message). The ``tiny`` model gets a tiny random ``AutoencoderTiny`` built here in code, with
its 4 latent channels and scale factor 8, saved and loaded like the real ones.

Library use::

    decoder = PreviewDecoder(loaded)
    callback = chain(progress_callback, preview_callback(decoder, on_preview))
    pipe(..., callback_on_step_end=callback)

``on_preview(step, total, image)`` gets a PIL image of at most ``max_size`` pixels a side (a
batch becomes a strip, left to right).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GemPixError, ModelUnavailableError, ValidationError
from .hub import hub_reachable

log = logging.getLogger("gempix.previews")

TAESD_REPOS = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}
PREVIEW_SIZE = 256  # longest side of a preview, in pixels
TINY_TAESD_FOLDER = "taesd"  # inside the tiny model's folder, built with it (tiny.ensure_tiny)

# on_preview(step, total, image)
OnPreview = Callable[[int, int, Any], None]
StepEnd = Callable[[Any, int, Any, dict], dict]


def build_tiny_taesd(folder: Path) -> Path:
    """A tiny random ``AutoencoderTiny`` for the ``tiny`` model, built from a fixed seed.

    Four latent channels and three 2x upsamplings (scale factor 8), like TAESD; 8 channels
    per block and one block per level keep it a few thousand parameters. Saved as a diffusers
    folder and loaded like the real ones. ``tiny.ensure_tiny`` builds it into the tiny model's
    folder, under that build's lock and atomic move.
    """
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    taesd = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    )
    taesd.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def preview_decoder(preset) -> str:
    """The decoder live previews use for ``preset``, or "none" (said plainly in the catalogue):
    only SD and SDXL latents have a TAESD here."""
    if preset.family not in TAESD_REPOS:
        return "none"
    return "built locally" if preset.is_tiny else TAESD_REPOS[preset.family]


def latent_family(loaded) -> str:
    """ "sd" or "sdxl": which TAESD decodes this model's latents; ValidationError otherwise."""
    preset = loaded.preset
    if preset.family in TAESD_REPOS:
        return preset.family
    pipe = loaded.pipe
    unet = getattr(pipe, "unet", None)
    channels = getattr(getattr(unet, "config", None), "in_channels", None)
    if unet is not None and channels in (4, 9):  # 9: inpainting UNets, 4-channel latents
        return "sdxl" if hasattr(pipe, "text_encoder_2") else "sd"
    raise ValidationError(
        f"Live previews support SD and SDXL models; {preset.name!r} ({preset.family}) has "
        "latents no tiny decoder here reads. Turn previews off for this model."
    )


def load_taesd(repo: str, dtype, device: str, hub_timeout: int = 10):
    """``AutoencoderTiny`` from the local cache, else from the Hub; fails fast offline."""
    from diffusers import AutoencoderTiny

    try:
        return AutoencoderTiny.from_pretrained(repo, dtype=dtype, local_files_only=True).to(device)
    except OSError:
        pass
    if not hub_reachable(hub_timeout):
        raise ModelUnavailableError(
            f"Live previews need the tiny decoder {repo!r}, which is not downloaded, and the "
            f"Hugging Face Hub is unreachable. Download it once while online with: "
            f"hf download {repo} (or turn previews off)."
        )
    try:
        return AutoencoderTiny.from_pretrained(repo, dtype=dtype).to(device)
    except OSError as error:
        raise ModelUnavailableError(
            f"Could not load the preview decoder {repo!r}: {str(error).splitlines()[0]}"
        ) from None


def _execution_device(pipe, fallback: str):
    try:
        return str(pipe._execution_device)
    except (AttributeError, RuntimeError):
        return fallback


class PreviewDecoder:
    """Decodes latents to small PIL previews with a TAESD-family tiny autoencoder.

    ``PreviewDecoder(loaded)`` picks the decoder for the loaded model; ``vae=`` passes one in
    (benchmarks, custom models). ``seconds`` keeps the time of every decode, to measure the
    overhead against the step time.
    """

    def __init__(
        self,
        loaded=None,
        *,
        vae=None,
        max_size: int = PREVIEW_SIZE,
        hub_timeout: int = 10,
    ):
        self.max_size = max_size
        self.seconds: list[float] = []
        if vae is None:
            if loaded is None:
                raise ValueError("PreviewDecoder needs a loaded model or a vae")
            vae = self._load_for(loaded, hub_timeout)
        self.vae = vae.eval()

    @staticmethod
    def _load_for(loaded, hub_timeout: int):
        device = _execution_device(loaded.pipe, loaded.device)
        if loaded.preset.is_tiny and loaded.preset.family == "sd":
            from diffusers import AutoencoderTiny

            source = Path(loaded.pipe.name_or_path) / TINY_TAESD_FOLDER
            taesd = AutoencoderTiny.from_pretrained(source, dtype=loaded.dtype)
            return taesd.to(device)
        return load_taesd(TAESD_REPOS[latent_family(loaded)], loaded.dtype, device, hub_timeout)

    def decode(self, latents):
        """Latents (batch, 4, h, w), as the denoiser sees them, to one PIL preview."""
        import numpy as np
        import torch
        from PIL import Image

        started = time.perf_counter()
        parameter = next(self.vae.parameters())
        with torch.inference_mode():
            latents = latents.detach().to(device=parameter.device, dtype=parameter.dtype)
            limit = max(1, self.max_size // 8)
            height, width = latents.shape[-2:]
            if max(height, width) > limit:  # shrink latents, not pixels: 64x cheaper
                scale = limit / max(height, width)
                size = (max(1, round(height * scale)), max(1, round(width * scale)))
                latents = torch.nn.functional.interpolate(latents, size=size, mode="area")
            pixels = self.vae.decode(latents, return_dict=False)[0]
            pixels = (pixels.float() / 2 + 0.5).clamp(0, 1).nan_to_num(0.0)
            strip = torch.cat(list(pixels), dim=-1)  # batch side by side
            array = (strip.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        self.seconds.append(time.perf_counter() - started)
        return Image.fromarray(array)


# pipeline -> its PreviewDecoder, or the GemPixError building one raised
_DECODERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DECODERS_LOCK = threading.Lock()


def decoder_for(loaded, **options) -> PreviewDecoder:
    """The preview decoder of this loaded pipeline, built once and reused. A failure is kept
    too, so an offline server does not ask the Hub again for every request's previews."""
    with _DECODERS_LOCK:
        decoder = _DECODERS.get(loaded.pipe)
        if decoder is None:
            try:
                decoder = PreviewDecoder(loaded, **options)
            except GemPixError as error:
                decoder = error
            _DECODERS[loaded.pipe] = decoder
    if isinstance(decoder, GemPixError):
        raise decoder
    return decoder


def preview_callback(decoder: PreviewDecoder, on_preview: OnPreview, every: int = 1) -> StepEnd:
    """A ``callback_on_step_end`` that decodes the latents every ``every`` steps (and at the
    last step) and calls ``on_preview(step, total, image)``.

    A failing decode (out of memory, say) is logged once and turns previews off for the rest
    of the call, never failing the generation; an exception from ``on_preview`` itself
    propagates, so a front door can use it to cancel.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1, not {every}")
    broken = {"yes": False}

    def callback(pipeline, step, timestep, callback_kwargs):
        total = pipeline.num_timesteps
        done = step + 1
        latents = callback_kwargs.get("latents")
        if broken["yes"] or latents is None or (done % every and done != total):
            return callback_kwargs
        try:
            image = decoder.decode(latents)
        except Exception as error:  # a preview is never worth a failed image
            log.warning("live preview failed, previews off for this image: %s", error)
            broken["yes"] = True
            return callback_kwargs
        on_preview(done, total, image)
        return callback_kwargs

    return callback


def chain(*callbacks: StepEnd | None) -> StepEnd:
    """One step-end callback running several in order, each seeing the previous one's
    ``callback_kwargs`` (``None`` entries are skipped)."""
    active = [callback for callback in callbacks if callback is not None]

    def chained(pipeline, step, timestep, callback_kwargs):
        for callback in active:
            callback_kwargs = callback(pipeline, step, timestep, callback_kwargs)
        return callback_kwargs

    return chained
