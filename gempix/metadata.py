"""PNG metadata: reproducible parameters, readable by existing tools, and an AI disclosure.

Three chunks go into every PNG:
- ``parameters``: the "infotext" layout (prompt, ``Negative prompt:``, ``Steps: ..., Seed: ...``)
  that image viewers, galleries and other UIs already parse;
- ``gempix``: JSON with every parameter, so an image can be regenerated exactly;
- XMP with IPTC ``DigitalSourceType`` = ``trainedAlgorithmicMedia``, the standard machine-readable
  "made by AI" label.
With ``metadata_prompt`` off, prompt and negative prompt are left out of all three.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from . import __version__

AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
XMP_KEY = "XML:com.adobe.xmp"
PROMPT_FIELDS = ("prompt", "negative_prompt")
# zlib level 3 rather than Pillow's 6: measured on a 3840x2160 upscaled image here, 0.75 s
# instead of 1.23 s for 10 % more bytes.
PNG_COMPRESS_LEVEL = 3

XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    Iptc4xmpExt:DigitalSourceType="{source_type}"
    xmp:CreatorTool="GemPix {version}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def infotext(params: dict[str, Any]) -> str:
    """The widely parsed "parameters" text: prompt line, negative line, then key: value pairs.

    An upscaled image follows A1111's hires convention, so tools that regenerate from it
    (and readers such as sd-parsers) use the size the model drew: ``Size`` is the base
    generation, and ``Hires upscale``/``Hires resize``/``Hires upscaler`` say how it grew.
    """
    lines = []
    if params.get("prompt"):
        lines.append(params["prompt"])
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    upscaled = bool(params.get("upscaled"))
    width, height = params.get("width"), params.get("height")
    base = (params.get("base_width") or width, params.get("base_height") or height)
    pairs = [
        ("Steps", params.get("steps")),
        ("Sampler", params.get("sampler")),
        ("CFG scale", params.get("guidance")),
        ("Seed", params.get("seed")),
        ("Size", f"{base[0]}x{base[1]}" if upscaled else f"{width}x{height}"),
        ("Model", params.get("model")),
        ("Denoising strength", params.get("strength") if params.get("img2img") else None),
        ("Hires upscale", _factor(width, base[0]) if upscaled else None),
        ("Hires resize", f"{width}x{height}" if upscaled else None),
        ("Hires upscaler", params.get("upscaler") if upscaled else None),
        ("Version", f"GemPix {__version__}"),
    ]
    lines.append(", ".join(f"{key}: {value}" for key, value in pairs if value is not None))
    return "\n".join(lines)


def _factor(size: Any, base: Any) -> str | None:
    """The upscale factor as A1111 writes it (``2``, ``1.5``)."""
    if not isinstance(size, int) or not isinstance(base, int) or base <= 0:
        return None
    return f"{size / base:.2f}".rstrip("0").rstrip(".")


def public_params(params: dict[str, Any], include_prompt: bool) -> dict[str, Any]:
    if include_prompt:
        return dict(params)
    return {key: value for key, value in params.items() if key not in PROMPT_FIELDS}


def png_info(params: dict[str, Any], include_prompt: bool = True) -> PngInfo:
    shown = public_params(params, include_prompt)
    info = PngInfo()
    info.add_text("parameters", infotext(shown))
    info.add_text("gempix", json.dumps(shown, ensure_ascii=False, sort_keys=True))
    info.add_itxt(XMP_KEY, XMP_TEMPLATE.format(source_type=AI_SOURCE_TYPE, version=__version__))
    info.add_text("Software", f"GemPix {__version__}")
    return info


def save_png(
    image: Image.Image,
    path: Path,
    params: dict[str, Any],
    include_prompt: bool,
    finish: Callable[[bytes], bytes] | None = None,
) -> Path:
    """Write ``image`` as a PNG with its metadata; ``finish`` (e.g. C2PA signing,
    ``gempix/provenance``) gets the encoded bytes last and returns what is written. If it
    raises, nothing is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="PNG",
        pnginfo=png_info(params, include_prompt),
        compress_level=PNG_COMPRESS_LEVEL,
    )
    data = buffer.getvalue()
    path.write_bytes(finish(data) if finish else data)
    return path


def read_params(path: Path | str) -> dict[str, Any]:
    """The ``gempix`` JSON of a PNG written by GemPix (empty dict when absent)."""
    with Image.open(path) as image:
        raw = image.info.get("gempix")
    return json.loads(raw) if raw else {}
