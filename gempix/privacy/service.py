"""``studio.privacy``: every right and every account operation, as the front doors call them.

The rules live in the modules of this package (identity, gate, consent, restriction,
correction, export, erasure, policy, training); this class is the one way in, so the web app,
the HTTP API, the CLI and a notebook do exactly the same thing for the same request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from . import consent, correction, gate, identity, policy, restriction
from .account import account_summary
from .erasure import ErasureReport, erase
from .export import ExportResult, export_filename
from .export import export as write_export
from .training import ManifestResult, training_manifest

if TYPE_CHECKING:
    from ..service import Studio


class Privacy:
    """Accounts, consent, the data-subject rights and the privacy policy, per user."""

    def __init__(self, studio: Studio):
        self.studio = studio

    # -- accounts ------------------------------------------------------------------------------

    def create_user(self) -> tuple[str, str]:
        """A new account: ``(user_key, user_id)``; show the key once, it is not kept."""
        return identity.create_user(self.studio)

    def open_user(self, key: Any) -> str:
        """The user id a key opens; NotFoundError (one message) for any key that opens none."""
        return identity.open_user(self.studio, key)

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user's row, or None for someone who has not made anything yet."""
        try:
            return self.studio.store.get_user(user_id)
        except NotFoundError:
            return None

    def is_admin(self, user_id: str) -> bool:
        """The one rule for every door (``identity.is_admin``); the operator always is."""
        return user_id == identity.LOCAL_USER or identity.is_admin(self.user(user_id))

    def set_role(self, user_id: str, role: str) -> None:
        self.studio.store.update_user(user_id, role=role)

    def account(self, user_id: str) -> dict[str, Any]:
        """Profile, flags, consent states, policy notice and rows per table."""
        return account_summary(self.studio, user_id)

    def update_profile(self, user_id: str, **fields: Any) -> dict[str, Any]:
        return correction.update_profile(self.studio, user_id, **fields)

    def confirm_age(self, user_id: str) -> dict[str, Any]:
        """Record the minimum-age confirmation (creating a signed-in visitor's account)."""
        return gate.confirm_age(self.studio.store, user_id)

    def admit(self, user_id: str) -> dict[str, Any]:
        """The user's row if they may generate now; else the error that says why not."""
        return gate.admit(self.studio.store, self.studio.settings, user_id)

    def watch(self, user_id: str, progress: Any = None) -> gate.Progress:
        """``progress`` that stops the generation (UserLockedError) once the user is being
        erased: the privacy watch (``gate.watch``)."""
        return gate.watch(self.studio.store, user_id, progress)

    def still_active(self, user_id: str) -> None:
        """UserLockedError (409) if the user is being erased or is gone."""
        gate.still_active(self.studio.store, user_id)

    # -- policy and consent --------------------------------------------------------------------

    def needs_notice(self, user_id: str) -> bool:
        return policy.needs_notice(self.studio, user_id)

    def acknowledge_policy(self, user_id: str) -> None:
        policy.acknowledge_policy(self.studio, user_id, policy.load_policy().version)

    def consent(self, user_id: str) -> dict[str, consent.ConsentState]:
        return consent.status(self.studio, user_id)

    def set_consent(
        self, user_id: str, purpose: str, granted: bool, method: str
    ) -> consent.ConsentState:
        """Grant or withdraw ``purpose`` (training; analytics, whose withdrawal is an
        objection): one call either way, kept in the ledger and the audit."""
        change = consent.grant if granted else consent.withdraw
        return change(self.studio, user_id, purpose, method=method)

    def restrict(self, user_id: str, restricted: bool = True) -> dict[str, Any]:
        change = restriction.restrict if restricted else restriction.lift_restriction
        return change(self.studio, user_id)

    def is_restricted(self, user_id: str) -> bool:
        return restriction.is_restricted(self.studio, user_id)

    # -- rights --------------------------------------------------------------------------------

    def export_filename(self, user_id: str) -> str:
        return export_filename(self.studio, user_id)

    def export(self, user_id: str, path: str | Path) -> ExportResult:
        """Everything stored about the user as one ZIP at ``path``."""
        return write_export(self.studio, user_id, path)

    def erase(self, user_id: str) -> ErasureReport:
        """Everything of the user, every registered copy included, deleted and verified."""
        return erase(self.studio, user_id)

    def training_manifest(self, path: str | Path) -> ManifestResult:
        return training_manifest(self.studio, path)
