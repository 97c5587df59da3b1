"""Privacy as code: identity, the gate before generating, consent, export, erasure, policy.

Every front door (web UI, HTTP API, CLI, notebook) reaches these through ``studio.privacy``
(``service.Privacy``); the functions below, each taking the process's ``Studio``, are its
parts. Each promise of the privacy policy is implemented here and checked
by a test in ``tests/test_privacy*.py``; ``docs/privacy.md`` says how to use each right.
"""

from __future__ import annotations

from .account import account_summary
from .consent import (
    METHODS,
    PURPOSES,
    ConsentState,
    object_to_analytics,
    withdraw_objection,
)
from .consent import grant as grant_consent
from .consent import history as consent_history
from .consent import status as consent_status
from .consent import withdraw as withdraw_consent
from .correction import rename_character, replace_character_references, update_profile
from .erasure import ErasureIncomplete, ErasureReport, delete_images, erase
from .export import ExportResult, export, export_filename, export_schema
from .gate import AgeConfirmationRequired, admit, confirm_age
from .identity import LOCAL_USER, UNKNOWN_KEY, create_user, open_user
from .policy import Policy, acknowledge_policy, load_policy, needs_notice, notice_text
from .restriction import is_restricted, lift_restriction, restrict
from .service import Privacy
from .training import ManifestResult, training_manifest

__all__ = [
    "LOCAL_USER",
    "METHODS",
    "PURPOSES",
    "UNKNOWN_KEY",
    "AgeConfirmationRequired",
    "ConsentState",
    "ErasureIncomplete",
    "ErasureReport",
    "ExportResult",
    "ManifestResult",
    "Policy",
    "Privacy",
    "account_summary",
    "acknowledge_policy",
    "admit",
    "confirm_age",
    "consent_history",
    "consent_status",
    "create_user",
    "delete_images",
    "erase",
    "export",
    "export_filename",
    "export_schema",
    "grant_consent",
    "is_restricted",
    "lift_restriction",
    "load_policy",
    "needs_notice",
    "notice_text",
    "object_to_analytics",
    "open_user",
    "rename_character",
    "replace_character_references",
    "restrict",
    "training_manifest",
    "update_profile",
    "withdraw_consent",
    "withdraw_objection",
]
