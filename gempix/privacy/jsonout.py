"""Stored values as JSON: times as ISO 8601 UTC with ``Z``, no NaN, no raw bytes."""

from __future__ import annotations

import base64
import dataclasses
import math
from datetime import date, datetime
from typing import Any


def json_value(value: Any) -> Any:
    """``value`` with every nested datetime, bytes and non-finite float made JSON-safe."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + ("" if value.tzinfo else "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_value(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value
