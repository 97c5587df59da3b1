"""schemathesis hooks for tests/test_api_fuzz.py (loaded with SCHEMATHESIS_HOOKS).

Two rules of the generate body are stated in the schema's descriptions because no JSON-schema
keyword can state them, so for schema-valid (positive) cases the generator is taught them,
as schemathesis advises for rules the schema cannot carry:
- an image field is base64 text that decodes to a readable picture: a real picture is put
  where arbitrary text was drawn;
- with an init image, steps x strength must be at least 1 (a product of two fields): the
  strength is set to 1.
Negative cases are left as drawn.
"""

from __future__ import annotations

import base64
import io

import schemathesis
from PIL import Image

IMAGE_FIELDS = {"init_image", "style_image", "references"}


def _picture() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PICTURE = _picture()


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
    return case
