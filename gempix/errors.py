"""One error family for every front door.

The service raises these; the CLI turns them into a one-line message and exit code 2, the web
UI into ``gr.Error``, the HTTP API into ``{"ok": false, "error": ..., "status": ...}``. The
message is written for the person who caused it, so it names the field, the rule and the
value received, and never echoes a prompt back.
"""

from __future__ import annotations


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


class NotFoundError(GemPixError):
    """The thing does not exist, or belongs to someone else: both look the same on purpose."""

    status = 404


class ModelUnavailableError(GemPixError):
    """A named model is neither cached locally nor downloadable right now."""

    status = 503


class UserLockedError(GemPixError):
    """The user is being erased: nothing new may be recorded for them."""

    status = 409


class StoreError(GemPixError):
    """The database failed in a way the caller cannot fix (disk full, closed store...)."""

    status = 500


class ProvenanceError(GemPixError):
    """Content credentials could not be made: bad signing certificate or key, or a failed
    C2PA signature. An image is never written unsigned instead."""

    status = 500
