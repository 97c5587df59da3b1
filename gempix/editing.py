"""What an edit's pictures mean: the source, its mask, its canvas, and what is kept of them.

``read_inputs`` reads every picture of an ``EditRequest`` through the one gate
(``images.load_image``/``load_mask``) and checks them against each other (the mask has the
source's size and is not empty) before any model runs. Outpainting is a masked edit of a larger
canvas: the source in its place, the new border pre-filled with a blurred stretch of the source
(context for the model) and masked, the original area unmasked, so ``engine/edit.blend`` keeps
it pixel for pixel.

The result's ``edit`` parameters name the source (the generation id when it is one of the
user's, and the SHA-256 of its pixels), the mask's and the references' digests, and the
outpaint; ``params.request_from_params`` turns them back into the same request when given the
same pictures. The pictures themselves are kept beside the result (``save_sources``), so an
export carries them and deleting the image or the user deletes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from .content_credentials import Source
from .engine.sizes import ASPECTS
from .errors import ValidationError
from .images import ImageSource, load_image, load_mask, pixel_digest
from .params import EditRequest

SOURCES_FOLDER = "sources"  # images/<user>/sources/<image id>/ holds an edit's pictures


@dataclasses.dataclass(frozen=True)
class EditInputs:
    """An edit's pictures, read and checked."""

    source: Image.Image
    canvas: Image.Image  # the source, on the outpainted canvas when extended
    mask: Image.Image | None  # at the canvas' size; None: an edit by instruction
    given_mask: Image.Image | None  # the mask as the caller gave it (kept beside the result)
    references: tuple[Image.Image, ...]
    offset: tuple[int, int]  # where the source sits on the canvas

    def sources(self, source: ImageSource, style_image: ImageSource | None) -> list[Source]:
        """The ingredients of each result's content credentials: ``source`` as given (a
        signed file keeps its own manifest there) is the parent, the mask, the references and
        a style picture were inputs to the model."""
        sources = [Source(source, "source image")]
        if self.given_mask is not None:
            sources.append(Source(self.given_mask, "mask", "inputTo"))
        if style_image is not None:
            sources.append(Source(style_image, "style reference", "inputTo"))
        for number, reference in enumerate(self.references, start=1):
            sources.append(Source(reference, f"reference {number}", "inputTo"))
        return sources

    def params(self, request: EditRequest) -> dict[str, Any]:
        """The ``edit`` entry of each result's parameters: what it was made from."""
        return {
            "source": {
                "generation_id": request.source_id,
                "sha256": pixel_digest(self.source),
                "width": self.source.width,
                "height": self.source.height,
            },
            "mask_sha256": pixel_digest(self.given_mask) if self.given_mask else None,
            "references_sha256": [pixel_digest(image) for image in self.references],
            "outpaint": request.outpaint,
            "outpaint_pixels": list(self.padding()) if request.extends else None,
            "strength": request.strength,
        }

    def padding(self) -> tuple[int, int, int, int]:
        left, top = self.offset
        right = self.canvas.width - self.source.width - left
        bottom = self.canvas.height - self.source.height - top
        return left, top, right, bottom


def padding_for(size: tuple[int, int], aspect: str) -> tuple[int, int, int, int]:
    """Pixels to add on each side so ``size`` becomes ``aspect``, the source centred."""
    ratio_w, ratio_h = ASPECTS[aspect]
    width, height = size
    if width * ratio_h >= height * ratio_w:  # too wide already: add height
        extra_w, extra_h = 0, -(-width * ratio_h // ratio_w) - height
    else:
        extra_w, extra_h = -(-height * ratio_w // ratio_h) - width, 0
    return extra_w // 2, extra_h // 2, extra_w - extra_w // 2, extra_h - extra_h // 2


def extend(
    source: Image.Image, padding: tuple[int, int, int, int]
) -> tuple[Image.Image, Image.Image]:
    """The source on a canvas grown by ``padding`` (left, top, right, bottom) and the mask of
    the new border. The border starts as a blurred stretch of the source."""
    left, top, right, bottom = padding
    size = (source.width + left + right, source.height + top + bottom)
    radius = max(size) // 16 + 1
    canvas = source.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.BoxBlur(radius))
    canvas.paste(source, (left, top))
    mask = Image.new("L", size, 255)
    mask.paste(0, (left, top, left + source.width, top + source.height))
    return canvas, mask


def read_inputs(request: EditRequest, source: ImageSource) -> EditInputs:
    """Read and check the edit's pictures (``source``: the request's, or the file of its
    ``source_id``); ValidationError naming the field."""
    picture = load_image(source, "source")
    given = None
    if request.mask is not None:
        given = load_mask(request.mask, "mask")
        if given.size != picture.size:
            raise ValidationError(
                f"mask: {given.width}x{given.height} does not match the source's "
                f"{picture.width}x{picture.height}; draw it on the source."
            )
        if given.getextrema()[1] == 0:
            raise ValidationError("mask: the mask is empty; paint the area that may change.")
    references = tuple(
        load_image(image, f"references[{index}]") for index, image in enumerate(request.references)
    )
    padding = (0, 0, 0, 0)
    if request.outpaint:
        padding = padding_for(picture.size, request.outpaint)
    elif request.outpaint_pixels:
        padding = tuple(request.outpaint_pixels)
    canvas, mask = picture, given
    if any(padding):
        canvas, mask = extend(picture, padding)
        if given is not None:
            mask.paste(given, padding[:2])
    elif request.outpaint:
        raise ValidationError(f"outpaint: the source is already {request.outpaint}.")
    return EditInputs(picture, canvas, mask, given, references, padding[:2])


def save_sources(folder: Path, inputs: EditInputs) -> list[Path]:
    """Write the edit's pictures as PNGs into ``folder`` (one result's); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    named = [("source", inputs.source), ("mask", inputs.given_mask)]
    named += [(f"reference-{n}", image) for n, image in enumerate(inputs.references, start=1)]
    paths = []
    for name, image in named:
        if image is not None:
            path = folder / f"{name}.png"
            image.save(path, format="PNG")
            paths.append(path)
    return paths


def painted(layer: ImageSource) -> bool:
    """Whether a brush layer (paint on transparency, or a white-on-black mask) has any paint:
    an untouched layer means "no mask" (an instruction edit or a plain outpaint)."""
    return load_mask(layer, "mask").getextrema()[1] > 0
