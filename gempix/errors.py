"""One error family for every front door.

The service raises these; the CLI turns them into a one-line message and exit code 2, the web
UI into ``gr.Error``, the HTTP API into ``{"ok": false, "error": ..., "status": ...}``. The
message is written for the person who caused it, so it names the field, the rule and the
value received, and never echoes a prompt back.
"""

from __future__ import annotations

from typing import Any

_SHOWN = 40  # at most this many characters of a value are quoted back in an error


class GemPixError(Exception):
    """Base class: something the caller can fix or should know about."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ValidationError(GemPixError):
    """A request or a setting broke a rule (bad size, empty prompt, unreadable image...)."""

    status = 400


class SettingsError(ValidationError):
    """A setting (env var or argument) has a value outside its allowed set."""


class PermissionDenied(GemPixError):
    """The caller may not do this (an admin-only report, a key whose role is too narrow)."""

    status = 403


class NotFoundError(GemPixError):
    """The thing does not exist, or belongs to someone else: both look the same on purpose."""

    status = 404


class ModelUnavailableError(GemPixError):
    """A named model is neither cached locally nor downloadable right now."""

    status = 503


class ConflictError(ValidationError):
    """The request clashes with what exists (a name already taken): valid, but not now."""

    status = 409


class UserLockedError(GemPixError):
    """The user is being erased: nothing new may be recorded for them."""

    status = 409


class BudgetExceeded(GemPixError):
    """The user spent their generation budget for now (``gempix.budget``); ``headers`` carry
    ``Retry-After`` for the HTTP API."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class StoreError(GemPixError):
    """The database failed in a way the caller cannot fix (disk full, closed store...)."""

    status = 500


class ProvenanceError(GemPixError):
    """Content credentials could not be made: bad signing certificate or key, or a failed
    C2PA signature. An image is never written unsigned instead."""

    status = 500


def short(value: Any) -> str:
    """``value`` as an error message quotes it: repr, and at most 40 characters of text."""
    return repr(value if not isinstance(value, str) else value[:_SHOWN])


def out_of_range(field: str, value: Any, low: float, high: float, low_open: bool = False) -> str:
    """The one range message: whole numbers say "allowed", real numbers show the interval."""
    if isinstance(low, int) and isinstance(high, int) and not low_open:
        return f"{field}: {value} is out of range; allowed {low} to {high}."
    bracket = "(" if low_open else "["
    return f"{field}: {float(value)} is outside {bracket}{float(low)}, {float(high)}]."


def whole(value: Any, field: str, low: int, high: int) -> int:
    """``value`` as a whole number in [low, high] (an integral float counts); else the
    ValidationError every front door shows for such a number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected a whole number, got {short(value)}.")
    if not low <= value <= high:
        raise ValidationError(out_of_range(field, value, low, high))
    return value
