"""The privacy policy: a Markdown file in the package, its version, and who has seen it.

``policy.md`` starts with front matter (``version`` and ``last_updated``). A user whose
``policy_version_seen`` differs from the current version gets a notice in every front door
until they acknowledge it; changing the policy means changing its version and date.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import GemPixError, ValidationError
from .identity import LOCAL_USER

if TYPE_CHECKING:
    from ..service import Studio

POLICY_FILE = "policy.md"
_FRONT_MATTER = re.compile(r"\A---\n(?P<head>.*?)\n---\n(?P<body>.*)\Z", re.S)


@dataclasses.dataclass(frozen=True)
class Policy:
    version: str
    last_updated: date
    text: str  # the Markdown body, without the front matter

    @property
    def heading(self) -> str:
        return f"Version {self.version} · Last updated {self.last_updated.isoformat()}"


def parse_policy(source: str) -> Policy:
    """A ``Policy`` from Markdown with ``version`` and ``last_updated`` front matter."""
    match = _FRONT_MATTER.match(source.replace("\r\n", "\n"))
    if not match:
        raise GemPixError("The privacy policy has no front matter (--- version ... ---).")
    fields = {}
    for line in match["head"].splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip().strip("'\"")
    version = fields.get("version", "")
    if not re.fullmatch(r"[0-9][0-9A-Za-z.-]{0,31}", version):
        raise GemPixError(f"The privacy policy's version {version!r} is not a version number.")
    try:
        updated = date.fromisoformat(fields.get("last_updated", ""))
    except ValueError:
        raise GemPixError("The privacy policy's last_updated is not a date (YYYY-MM-DD).") from None
    return Policy(version=version, last_updated=updated, text=match["body"].strip() + "\n")


@functools.lru_cache(maxsize=1)
def load_policy() -> Policy:
    """The packaged policy (read once per process)."""
    source = resources.files(__package__).joinpath(POLICY_FILE).read_text(encoding="utf-8")
    return parse_policy(source)


def needs_notice(studio: Studio, user_id: str) -> bool:
    """True while the user has not acknowledged the current policy version.

    The local operator runs their own installation and gets no notice.
    """
    if user_id == LOCAL_USER:
        return False
    return studio.store.get_user(user_id)["policy_version_seen"] != load_policy().version


def notice_text(policy: Policy | None = None) -> str:
    """The one-line announcement shown until the user acknowledges the current version."""
    policy = policy or load_policy()
    return (
        f"Our privacy policy has changed (version {policy.version}, last updated "
        f"{policy.last_updated.isoformat()}). Please read it; nothing changes for your data "
        "without your consent."
    )


def acknowledge_policy(studio: Studio, user_id: str, version: str | None = None) -> Policy:
    """Store that the user has seen the current policy; return it.

    ``version`` is the version the user was shown: if the policy changed since, the
    acknowledgement is refused so nobody acknowledges a text they did not see.
    """
    policy = load_policy()
    if version is not None and version != policy.version:
        raise ValidationError(
            f"version: the policy shown ({version!r}) is not the current one "
            f"({policy.version}); show the current policy first."
        )
    studio.store.update_user(user_id, policy_version_seen=policy.version)
    return policy
