"""The API's limits: the ``Settings`` fields marked ``api``, as one frozen object.

Declared once, in ``gempix/settings.py`` (name, env var, default, help, parser); ``ApiConfig``
is derived from that table, so the API and the settings can never disagree. Values given here
directly (tests build configs with tiny limits) pass the same parsers. A rate of ``off``
switches that budget off.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import SettingsError
from ..settings import SETTINGS

API_SETTINGS = {item.name: item for item in SETTINGS if item.api}
OFF = "off"


def _check(self) -> None:
    for name, item in API_SETTINGS.items():
        value = getattr(self, name)
        if value is item.default:
            continue
        try:
            object.__setattr__(self, name, item.parse(str(value)))
        except ValueError as error:
            raise SettingsError(f"{name}: {value!r}: {error}.") from None


def _limited(self, budget: str) -> bool:
    """Whether the rate ``rate_<budget>`` is on."""
    return getattr(self, f"rate_{budget}") not in ("", OFF)


def _from_settings(cls, settings: Any, **overrides: Any) -> ApiConfig:
    """Defaults, then ``settings`` fields of the same names, then ``overrides``."""
    values = {name: getattr(settings, name) for name in API_SETTINGS if hasattr(settings, name)}
    return cls(**{**values, **overrides})


ApiConfig = dataclasses.make_dataclass(
    "ApiConfig",
    [
        (item.name, type(item.default), dataclasses.field(default=item.default))
        for item in API_SETTINGS.values()
    ],
    frozen=True,
    namespace={
        "__doc__": "Rate limits (``limits`` notation such as ``10/minute``, or ``off``) and size "
        "bounds of the API; see ``Settings`` for each.",
        "__post_init__": _check,
        "limited": _limited,
        "from_settings": classmethod(_from_settings),
    },
)
ApiConfig.__module__ = __name__
