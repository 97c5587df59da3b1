"""schemathesis hooks for tests/test_api_fuzz.py (loaded with SCHEMATHESIS_HOOKS).

Two rules of the generate body are stated in the schema's descriptions because no JSON-schema
keyword can state them, so for schema-valid (positive) cases the generator is taught them,
as schemathesis advises for rules the schema cannot carry:
- an image field is base64 text that decodes to a readable picture: a real picture is put
  where arbitrary text was drawn;
- with an init image, and in an edit, steps x strength must be at least 1 (a product of two
  fields): the strength is set to 1;
- an edit has exactly one source (``source`` or ``source_id``; a drawn id names no image, so
  the picture is used), a mask of the source's size with some white in it, and one way to
  outpaint (``outpaint`` or ``outpaint_pixels``: the pixels are dropped); the tiny model
  edits only inside a mask or an outpaint, so an edit with neither gets the mask; the square
  source is already 1:1, so that outpaint becomes 16:9; it reads no references in an edit
  (a model-dependent 400), so they are dropped.
Negative cases are left as drawn.
"""

from __future__ import annotations

import base64
import io

import schemathesis
from PIL import Image

IMAGE_FIELDS = {"init_image", "style_image", "references", "source", "image"}


def _png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PICTURE = _png(Image.new("RGB", (64, 64), "teal"))
MASK = _png(Image.new("L", (64, 64), 255))


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    for field in IMAGE_FIELDS & set(case.body):
        value = case.body[field]
        if isinstance(value, str):
            case.body[field] = PICTURE
        elif isinstance(value, list):
            case.body[field] = [PICTURE if isinstance(v, str) else v for v in value]
    if isinstance(case.body.get("init_image"), str):
        case.body["strength"] = 1.0
    if case.operation.path.endswith("/edit"):
        case.body["source"] = PICTURE
        case.body["strength"] = 1.0
        case.body.pop("references", None)
        case.body.pop("source_id", None)
        if isinstance(case.body.get("mask"), str):
            case.body["mask"] = MASK
        if case.body.get("outpaint") == "1:1":
            case.body["outpaint"] = "16:9"
        if case.body.get("outpaint") and case.body.get("outpaint_pixels"):
            del case.body["outpaint_pixels"]
        if not (case.body.get("outpaint") or any(case.body.get("outpaint_pixels") or ())):
            case.body["mask"] = MASK
    return case
