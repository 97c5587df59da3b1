"""Reading the generation parameters other images carry ("PNG info"), whoever wrote them.

Three layouts are read, in this order: GemPix's own ``gempix`` JSON (``metadata.py``);
ComfyUI's embedded ``prompt`` graph (the API-format node dict, from which the sampler, its
positive and negative text, the latent size and the checkpoint are followed); and the
``parameters`` text of A1111, Forge and Fooocus (the infotext layout; Fooocus' JSON scheme
too), in a PNG text chunk or a JPEG's EXIF UserComment. The result's ``fields`` use the request
model's names (``params.GenerationRequest``), so "use these parameters" fills the Create form
the same way in every door; ``raw`` is what was found, for display. An image with none of them
gets a message saying so, not an error: reading it was fine.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from PIL import Image

from .images import ImageSource, open_image

EXIF_IFD = 0x8769
EXIF_USER_COMMENT = 0x9286
FIELDS = ("prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height")
NOTHING = (
    "image: no generation parameters found (none of GemPix's, A1111/Forge/Fooocus' or "
    "ComfyUI's metadata is in it)."
)


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What an image says about how it was made."""

    kind: str | None  # "gempix", "a1111", "fooocus", "comfyui"; None when nothing was found
    fields: dict[str, Any]  # in the request model's names (prompt, seed, steps, ...)
    model: str | None
    raw: Any
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_info(source: ImageSource) -> ImageInfo:
    """The parameters ``source`` (a path, bytes or PIL image) carries; ValidationError only
    when it is not a readable image."""
    image = open_image(source, "image")
    text = dict(image.info)
    if text.get("gempix"):
        params = _json(text["gempix"])
        if isinstance(params, dict):
            return _found("gempix", params, params.get("model"), params)
    if text.get("prompt"):
        graph = _json(text["prompt"])
        if isinstance(graph, dict) and graph:
            found = comfyui_fields(graph)
            if found is not None:
                return _found("comfyui", found[0], found[1], graph)
    parameters = text.get("parameters") or _user_comment(image)
    if isinstance(parameters, str) and parameters.strip():
        fooocus = _json(parameters)
        if isinstance(fooocus, dict):
            return _found("fooocus", fooocus_fields(fooocus), fooocus.get("base_model"), fooocus)
        fields, model = infotext_fields(parameters)
        return _found("a1111", fields, model, parameters)
    return ImageInfo(None, {}, None, None, NOTHING)


def _found(kind: str, values: dict[str, Any], model: Any, raw: Any) -> ImageInfo:
    fields = {name: values[name] for name in FIELDS if values.get(name) not in (None, "")}
    label = {"gempix": "GemPix", "a1111": "A1111/Forge", "fooocus": "Fooocus"}
    message = f"Parameters written by {label.get(kind, 'ComfyUI')}."
    return ImageInfo(kind, fields, str(model) if model else None, raw, message)


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _user_comment(image: Image.Image) -> str | None:
    """A JPEG's EXIF UserComment (where A1111 and GemPix put ``parameters``)."""
    try:
        raw = image.getexif().get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
    except (AttributeError, ValueError):
        return None
    if not isinstance(raw, bytes):
        return raw if isinstance(raw, str) else None
    body = raw[8:] if raw[:8] in (b"UNICODE\x00", b"ASCII\x00\x00\x00") else raw
    if raw.startswith(b"UNICODE"):
        big = body[:1] == b"\x00"
        return body.decode("utf-16-be" if big else "utf-16-le", errors="replace")
    return body.decode("utf-8", errors="replace")


def _number(value: Any, kind: type) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


_PAIR = re.compile(r'\s*([\w ./()-]+?):\s*("(?:\\.|[^"])*"|[^,]*)(?:,|$)')


def infotext_fields(text: str) -> tuple[dict[str, Any], str | None]:
    """A1111's layout: prompt lines, ``Negative prompt:`` lines, then ``Key: value, ...``."""
    lines = text.strip().split("\n")
    settings = lines.pop() if len(lines) > 1 or "Steps:" in lines[0] else ""
    pairs = {key.strip(): value.strip().strip('"') for key, value in _PAIR.findall(settings)}
    if "Steps" not in pairs:  # the last line was prompt text after all
        lines, pairs = [*lines, settings], {}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    width = height = None
    if "x" in pairs.get("Size", ""):
        width, height = (_number(side, int) for side in pairs["Size"].split("x", 1))
    fields = {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(negative).strip(),
        "seed": _number(pairs.get("Seed"), int),
        "steps": _number(pairs.get("Steps"), int),
        "guidance": _number(pairs.get("CFG scale"), float),
        "width": width,
        "height": height,
    }
    return fields, pairs.get("Model")


def fooocus_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Fooocus' JSON scheme: prompt, negative_prompt, seed, steps, guidance_scale and a
    ``resolution`` like ``"(1024, 1024)"``."""
    sides = re.findall(r"\d+", str(data.get("resolution", "")))
    return {
        "prompt": data.get("prompt"),
        "negative_prompt": data.get("negative_prompt"),
        "seed": _number(data.get("seed"), int),
        "steps": _number(data.get("steps"), int),
        "guidance": _number(data.get("guidance_scale"), float),
        "width": _number(sides[0], int) if len(sides) == 2 else None,
        "height": _number(sides[1], int) if len(sides) == 2 else None,
    }


def comfyui_fields(graph: dict[str, Any]) -> tuple[dict[str, Any], str | None] | None:
    """The first sampler of a ComfyUI API graph, with the text and sizes its links lead to."""
    nodes = {key: node for key, node in graph.items() if isinstance(node, dict)}
    sampler = next(
        (node for node in nodes.values() if "KSampler" in str(node.get("class_type", ""))),
        None,
    )
    if sampler is None:
        return None
    inputs = sampler.get("inputs") or {}

    def follow(value: Any, name: str, seen: int = 0) -> Any:
        """A linked input (``[node id, output]``) followed to the node's ``name`` input."""
        while isinstance(value, list) and value and str(value[0]) in nodes and seen < 16:
            node_inputs = nodes[str(value[0])].get("inputs") or {}
            value = node_inputs.get(name, node_inputs.get("samples"))
            seen += 1
        return value

    def text(link: Any) -> str | None:
        found = follow(link, "text")
        return found if isinstance(found, str) else None

    latent = nodes.get(str((inputs.get("latent_image") or [None])[0])) or {}
    sizes = latent.get("inputs") or {}
    model = follow(inputs.get("model"), "ckpt_name")
    fields = {
        "prompt": text(inputs.get("positive")),
        "negative_prompt": text(inputs.get("negative")),
        "seed": _number(inputs.get("seed", inputs.get("noise_seed")), int),
        "steps": _number(inputs.get("steps"), int),
        "guidance": _number(inputs.get("cfg"), float),
        "width": _number(sizes.get("width"), int),
        "height": _number(sizes.get("height"), int),
    }
    return fields, model if isinstance(model, str) else None
