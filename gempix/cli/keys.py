"""`gempix keys`: API keys for the HTTP API (create, list, revoke).

These open the data directory's database, also while the server runs on it; users create and
revoke their own keys in the web app's API tab too.
"""

from __future__ import annotations

import json

import click

from .. import keys as api_keys
from ..errors import GemPixError
from ..privacy.identity import LOCAL_USER, open_user
from ..privacy.jsonout import json_value
from ..service import Studio
from . import UserError, cli, load_settings


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@cli.group()
def keys() -> None:
    """API keys: `Authorization: Bearer gpx_...` for the HTTP API.

    Example: gempix keys create --role admin --name ops
    """


@keys.command("create")
@click.option(
    "--role",
    type=click.Choice(["user", "admin"]),
    default="user",
    show_default=True,
    help="admin keys may also read /api/v1/admin/*.",
)
@click.option("--name", default="", help="A label for the key (1-64 characters).")
@click.option(
    "--user-key",
    help="The user key (gpu_...) of the account the key acts for; default: you, the operator.",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def create(role: str, name: str, user_key: str | None, data_dir: str | None) -> None:
    """Create a key and print it once (stdout); only a hash of it is kept.

    Example: KEY=$(gempix keys create --name laptop)
    """
    with Studio(load_settings(data_dir=data_dir)) as studio:
        try:
            user_id = open_user(studio, user_key) if user_key else LOCAL_USER
            full_key, row = api_keys.create_key(studio, user_id, role, name)
        except GemPixError as error:
            raise UserError(error.message) from None
    click.echo(full_key)
    click.echo(
        f"Created {row['role']} key {row['prefix']} ({row['name']}). It is shown only now: "
        "store it safely.",
        err=True,
    )


@keys.command("list")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def list_(fmt: str, data_dir: str | None) -> None:
    """Every key: prefix, name, role, owner (local operator or a user), dates. No secrets."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        rows = api_keys.list_keys(studio)
    if fmt == "json":
        click.echo(json.dumps(json_value(rows), indent=2))
        return
    if not rows:
        click.echo("No API keys yet. Create one with: gempix keys create")
        return
    click.echo(f"{'prefix':<14}{'role':<7}{'owner':<8}{'created':<18}{'last used':<18}status  name")
    for row in rows:
        owner = "local" if row["user_id"] == LOCAL_USER else "user"
        status = "revoked" if row.get("revoked_at") else "active "
        click.echo(
            f"{row['prefix']:<14}{row['role']:<7}{owner:<8}{_when(row['created_at']):<18}"
            f"{_when(row.get('last_used_at')) or 'never':<18}{status} {row['name']}"
        )


@keys.command("revoke")
@click.argument("prefix")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def revoke(prefix: str, data_dir: str | None) -> None:
    """Revoke the key PREFIX (the 12 characters after gpx_) at once.

    Example: gempix keys revoke 3f9a1c0b7d2e
    """
    with Studio(load_settings(data_dir=data_dir)) as studio:
        try:
            api_keys.revoke_key(studio, None, prefix)
        except GemPixError as error:
            raise UserError(error.message) from None
    click.echo(f"Revoked {prefix}.")
