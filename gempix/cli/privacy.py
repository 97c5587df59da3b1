"""`gempix user|consent|policy|export|erase|delete-image|restrict|object|training-manifest`.

Every command calls ``studio.privacy`` (or ``studio.images``), as the web app and the HTTP API
do. A wrong, malformed or erased key is one line on stderr and exit code 2, like any invalid
input.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..keys import ROLES
from ..privacy.consent import PURPOSES, ConsentState
from ..privacy.jsonout import json_value
from ..privacy.policy import load_policy, notice_text
from ..service import Studio
from ..settings import Settings
from . import cli, data_dir_option, key_options, session, user_key_options

METHOD = "cli"


def _session(data_dir, user_key, user_key_file):
    return session(Settings.load(data_dir=data_dir), user_key, user_key_file)


def _state_line(state: ConsentState) -> str:
    word = "granted" if state.granted else "not granted"
    if state.default:
        return f"{state.purpose}: {word} (default)"
    when = state.since.isoformat(sep=" ", timespec="seconds")
    source = f"policy {state.policy_version}, via {state.method}"
    return f"{state.purpose}: {word} since {when} UTC ({source})"


# -- users ----------------------------------------------------------------------------------


@cli.group()
def user() -> None:
    """Create a user key, see an account, edit its profile."""


@user.command("create")
@data_dir_option
def user_create(data_dir: str | None) -> None:
    """Create a user and print their key, once: the server stores only a hash of it.

    Keep the key secret and safe; it cannot be recovered.

    Example: gempix user create > my-key.txt
    """
    with Studio(Settings.load(data_dir=data_dir)) as studio:
        key, _ = studio.privacy.create_user()
    click.echo(key)
    click.echo(
        "This is your user key; it is shown only this once. Keep it safe: it cannot be "
        "recovered, and anyone holding it can act as you.",
        err=True,
    )


@user.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_key_options
def user_show(as_json: bool, data_dir, user_key, user_key_file) -> None:
    """Show the account: profile, consents, restriction, policy notice, stored rows."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        summary = studio.privacy.account(user_id)
    if as_json:
        click.echo(json.dumps(json_value(summary), indent=2))
        return
    click.echo(f"Display name: {summary['display_name'] or '(none)'}")
    click.echo(f"Created: {summary['created_at'].isoformat(sep=' ', timespec='seconds')} UTC")
    click.echo(f"Age confirmed: {'yes' if summary['age_confirmed'] else 'no'}")
    click.echo(f"Processing restricted: {'yes' if summary['restricted'] else 'no'}")
    for state in summary["consents"].values():
        click.echo(f"Consent {_state_line(state)}")
    if summary["needs_notice"]:
        click.echo(notice_text())
    rows = ", ".join(f"{table} {count}" for table, count in summary["rows"].items())
    click.echo(f"Stored rows: {rows}")


@user.command("update")
@click.option("--display-name", required=True, help="New display name ('' removes it).")
@user_key_options
def user_update(display_name: str, data_dir, user_key, user_key_file) -> None:
    """Correct the profile's editable fields.

    Example: gempix user update --display-name "Ada" --user-key-file my-key.txt
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.privacy.update_profile(user_id, display_name=display_name)
    click.echo("Profile updated.")


@user.command("role")
@click.argument("role", type=click.Choice(ROLES))
@user_key_options
def user_role(role: str, data_dir, user_key, user_key_file) -> None:
    """Give the account a role: admins see the Analytics tab and /api/v1/admin/* (with an
    admin key); see docs/architecture.md, "Identity and roles". Works while the app runs too
    (reload the page to see the tab).

    Example: gempix user role admin --user-key-file my-key.txt
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.privacy.set_role(user_id, role)
    click.echo(f"Role set: {role}.")


@user.command("confirm-age")
@user_key_options
def user_confirm_age(data_dir, user_key, user_key_file) -> None:
    """Confirm that you are at least the minimum age (needed before your first image)."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.privacy.confirm_age(user_id)
        minimum = studio.settings.min_age
    click.echo(f"Confirmed: at least {minimum} years old.")


# -- consent and policy ---------------------------------------------------------------------


@cli.group()
def consent() -> None:
    """See, grant or withdraw consent (purposes: training, analytics)."""


@consent.command("status")
@user_key_options
def consent_status(data_dir, user_key, user_key_file) -> None:
    """Each purpose and whether it is granted now."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        states = studio.privacy.consent(user_id)
    for state in states.values():
        click.echo(_state_line(state))


def _consent_command(granted: bool):
    verb = "grant" if granted else "withdraw"
    help_text = (
        f"{verb.capitalize()} consent for PURPOSE (training or analytics); logged in the ledger."
        f"\n\nExample: gempix consent {verb} training --user-key-file my-key.txt"
    )

    @consent.command(verb, help=help_text)
    @click.argument("purpose", type=click.Choice(list(PURPOSES)))
    @user_key_options
    def command(purpose, data_dir, user_key, user_key_file) -> None:
        with _session(data_dir, user_key, user_key_file) as (studio, user_id):
            state = studio.privacy.set_consent(user_id, purpose, granted, METHOD)
        click.echo(_state_line(state))

    return command


consent_grant = _consent_command(True)
consent_withdraw = _consent_command(False)


@cli.command("policy")
@click.option("--ack", is_flag=True, help="Record that the user has read the current version.")
@key_options
@data_dir_option
def policy(ack: bool, user_key, user_key_file, data_dir) -> None:
    """Print the privacy policy with its version and date; --ack records that you read it."""
    current = load_policy()
    if ack:
        with _session(data_dir, user_key, user_key_file) as (studio, user_id):
            studio.privacy.acknowledge_policy(user_id)
        click.echo(f"Acknowledged privacy policy version {current.version}.")
        return
    click.echo(current.heading)
    click.echo()
    click.echo(current.text, nl=False)


# -- rights ---------------------------------------------------------------------------------


@cli.command("export")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), help="ZIP file to write.")
@user_key_options
def export_command(out: str | None, data_dir, user_key, user_key_file) -> None:
    """Export all your data: a ZIP of JSON files, every image, and a SHA-256 manifest.

    Example: gempix export --user-key-file my-key.txt -o my-gempix-data.zip
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        target = Path(out) if out else Path(studio.privacy.export_filename(user_id))
        result = studio.privacy.export(user_id, target)
    click.echo(f"{result.path}  {result.files} files, {result.bytes:,} bytes")


@cli.command("erase")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_key_options
def erase_command(yes: bool, data_dir, user_key, user_key_file) -> None:
    """Delete everything of yours, verify it, and print what was removed.

    Every row and file, every copy the web app served or converted, and the deleted values
    in the database files (their pages are overwritten). Afterwards your key is unknown. This
    cannot be undone.

    Example: gempix erase --user-key-file my-key.txt --yes
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        if not yes:
            click.confirm(
                "Erase all your images, characters, styles, consents and API keys? "
                "This cannot be undone",
                abort=True,
            )
        report = studio.privacy.erase(user_id)
    rows = ", ".join(f"{table} {count}" for table, count in report.rows.items() if count)
    click.echo(f"Erased rows: {rows or 'none'}")
    click.echo(
        f"Erased files: {report.files} ({report.bytes:,} bytes, {report.cached_copies} served "
        f"copies); database scrubbed; verified in {report.seconds:.1f} s."
    )


@cli.command("delete-image")
@click.argument("image_ids", nargs=-1, required=True)
@user_key_options
def delete_image_command(image_ids, data_dir, user_key, user_key_file) -> None:
    """Delete one or more of your images (rows, files, every copy served), for good.

    Example: gempix delete-image 3f2a... --user-key-file my-key.txt
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        counts = studio.images.delete(user_id, image_ids)
    click.echo(f"Deleted {counts['images']} image(s), {counts['files']} file(s).")


@cli.command("restrict")
@click.option("--lift", is_flag=True, help="Lift the restriction instead.")
@user_key_options
def restrict_command(lift: bool, data_dir, user_key, user_key_file) -> None:
    """Restrict processing: your data is kept but used for no analytics and no training.

    Example: gempix restrict --user-key-file my-key.txt   (undo: --lift)
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.privacy.restrict(user_id, not lift)
    click.echo("Restriction lifted." if lift else "Processing restricted.")


@cli.command("object")
@click.option("--withdraw", is_flag=True, help="Withdraw the objection instead.")
@user_key_options
def object_command(withdraw: bool, data_dir, user_key, user_key_file) -> None:
    """Object to analytics: your activity produces no usage events any more.

    Example: gempix object --user-key-file my-key.txt   (undo: --withdraw)
    """
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.privacy.set_consent(user_id, "analytics", withdraw, METHOD)
    click.echo("Objection withdrawn." if withdraw else "Objection recorded: no usage events.")


@cli.command("training-manifest")
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSONL file to write.",
)
@data_dir_option
def training_manifest_command(out: str, data_dir: str | None) -> None:
    """Write the generations that may be used for training now, one JSON object per line.

    Only users whose latest training consent is a grant and who are not restricted; no user
    ids. Build it right before training: a withdrawal removes the user from the next one.

    Example: gempix training-manifest -o train.jsonl
    """
    with Studio(Settings.load(data_dir=data_dir)) as studio:
        result = studio.privacy.training_manifest(out)
    click.echo(f"{result.path}  {result.generations} generations")
