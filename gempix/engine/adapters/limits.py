"""What a style reference or a character may be: checked before any model loads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ValidationError
from ...images import ImageSource, load_image

KINDS = ("style", "character")  # slot order of the loaded adapters
MAX_REFERENCES = 4
MAX_STRENGTH = 2.0


def check_references(sources: Sequence[ImageSource], field: str = "references") -> list:
    """1-4 reference images through ``load_image``: EXIF-upright RGB, size-limited."""
    if isinstance(sources, (str, Path, bytes)) or not isinstance(sources, Sequence):
        sources = [sources]
    if not sources:
        raise ValidationError(f"{field}: give at least one reference image.")
    if len(sources) > MAX_REFERENCES:
        raise ValidationError(
            f"{field}: {len(sources)} images; a character has 1 to {MAX_REFERENCES}."
        )
    return [load_image(source, f"{field}[{index}]") for index, source in enumerate(sources)]


def check_strength(value: Any, field: str) -> float:
    """A finite number in [0, MAX_STRENGTH]; 0 switches the adapter off."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{field}: expected a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= MAX_STRENGTH:
        raise ValidationError(f"{field}: {value} is outside [0, {MAX_STRENGTH}].")
    return value
