"""The API's limits, in one frozen object that ``create_app`` takes.

Until ``settings.py`` declares them (``GEMPIX_RATE_GENERATE`` ...), ``ApiConfig.from_settings``
takes each value from a ``Settings`` field of the same name when there is one and the default
here otherwise; nothing here reads the environment. Tests build their own with tiny limits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from limits import parse

from ..engine.request import MAX_IMAGES
from ..errors import SettingsError
from ..images import MAX_IMAGE_PIXELS

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    """Rate limits (``limits`` notation such as ``10/minute``) and size bounds of the API."""

    rate_generate: str = "10/minute"  # POST /generate (and the MCP tool), per key
    rate_requests: str = "600/hour"  # every request, per key
    rate_anonymous: str = "120/minute"  # requests without a valid key, per client address
    rate_web: str = "120/minute"  # web app events started, per client address ("off" = off)
    redis_url: str = ""  # "" keeps counters in memory (one process); redis://... shares them
    max_body_bytes: int = 48 * MIB  # a request body; larger gets 413 before it is read
    max_upload_bytes: int = 8 * MIB  # one decoded image (init image, character reference)
    max_upload_pixels: int = MAX_IMAGE_PIXELS  # one image's width x height
    max_images: int = MAX_IMAGES  # num_images per generation
    generate_timeout: float = 300.0  # seconds from queueing to result; then 504
    max_queue: int = 16  # generations waiting for the GPU; one more gets 503
    max_batch: int = 1  # generations let into the studio at once (its GPU line batches them)

    def __post_init__(self) -> None:
        for name in ("rate_generate", "rate_requests", "rate_anonymous", "rate_web"):
            value = getattr(self, name)
            if name == "rate_web" and value in ("", "off"):
                continue
            try:
                parse(value)
            except ValueError:
                raise SettingsError(
                    f"{name}: {value!r} is not a rate such as '10/minute' or '600/hour'."
                ) from None
        for name in (
            "max_body_bytes",
            "max_upload_bytes",
            "max_upload_pixels",
            "max_queue",
            "max_batch",
        ):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise SettingsError(f"{name}: expected a whole number of at least 1.")
        if not 1 <= self.max_images <= MAX_IMAGES:
            raise SettingsError(f"max_images: expected 1 to {MAX_IMAGES}.")
        if not 0 < float(self.generate_timeout) <= 24 * 3600:
            raise SettingsError("generate_timeout: expected seconds, more than 0.")

    @property
    def web_limited(self) -> bool:
        return self.rate_web not in ("", "off")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ApiConfig:
        """Defaults, then ``settings`` fields of the same names, then ``overrides``."""
        values = {
            field.name: getattr(settings, field.name)
            for field in dataclasses.fields(cls)
            if getattr(settings, field.name, None) is not None
        }
        return cls(**{**values, **overrides})
