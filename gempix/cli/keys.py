"""`gempix keys`: API keys for the HTTP API (create, list, revoke).

They call ``studio.keys``, as the web app's API tab does for a user's own keys, also while
the server runs on the same data directory.
"""

from __future__ import annotations

import json

import click

from ..privacy.identity import LOCAL_USER
from ..privacy.jsonout import json_value
from ..service import Studio
from ..settings import Settings
from . import cli, data_dir_option, session, user_key_options


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
    help="admin keys may also read /api/v1/admin/*, while their account is an admin.",
)
@click.option("--name", default="", help="A label for the key (1-64 characters).")
@user_key_options
def create(role: str, name: str, data_dir, user_key, user_key_file) -> None:
    """Create a key and print it once (stdout); only a hash of it is kept. It acts for the
    account of --user-key, by default for you, the operator (an admin).

    Example: KEY=$(gempix keys create --name laptop)
    """
    settings = Settings.load(data_dir=data_dir)
    with session(settings, user_key, user_key_file, operator=True) as (studio, user_id):
        full_key, row = studio.keys.create(user_id, role, name)
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
@data_dir_option
def list_(fmt: str, data_dir: str | None) -> None:
    """Every key: prefix, name, role, owner (local operator or a user), dates. No secrets."""
    with Studio(Settings.load(data_dir=data_dir)) as studio:
        rows = studio.keys.list()
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
@data_dir_option
def revoke(prefix: str, data_dir: str | None) -> None:
    """Revoke the key PREFIX (the 12 characters after gpx_) at once.

    Example: gempix keys revoke 3f9a1c0b7d2e
    """
    with Studio(Settings.load(data_dir=data_dir)) as studio:
        studio.keys.revoke(None, prefix)
    click.echo(f"Revoked {prefix}.")
