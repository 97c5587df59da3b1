"""`gempix user|consent|policy|export|erase|delete-image|restrict|object|training-manifest`.

Every command calls the same ``gempix.privacy`` functions as the web app and the HTTP API.
Commands acting for a user take their user key with ``--user-key`` or, keeping it out of the
shell history and the process list, ``--user-key-file`` (``-`` reads standard input). A wrong,
malformed or erased key is one line on stderr and exit code 2, like any invalid input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import privacy
from ..privacy import consent as consents
from ..service import Studio
from ..store.users import ROLES
from . import UserError, cli, load_settings

METHOD = "cli"


def _studio(data_dir: str | None) -> Studio:
    return Studio(load_settings(data_dir=data_dir))


def _read_key(user_key: str | None, user_key_file: str | None) -> str:
    if (user_key is None) == (user_key_file is None):
        raise UserError("Give the user key with --user-key KEY or --user-key-file FILE.")
    if user_key is not None:
        return user_key
    try:
        if user_key_file == "-":
            return sys.stdin.readline().strip()
        return Path(user_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise UserError(f"Could not read the user key from {user_key_file}.") from None


def data_dir_option(command):
    return click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")(
        command
    )


def user_key_options(command):
    """--user-key / --user-key-file / --data-dir, shared by every command acting for a user."""
    for option in reversed(
        [
            click.option("--user-key", help="Your user key (gpu_...)."),
            click.option(
                "--user-key-file",
                type=click.Path(dir_okay=False, allow_dash=True),
                help="Read the user key from this file ('-': standard input).",
            ),
            click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder."),
        ]
    ):
        command = option(command)
    return command


class _Session:
    """A studio and the user a key opens; closes the studio on leaving."""

    def __init__(self, data_dir, user_key, user_key_file):
        self.key = _read_key(user_key, user_key_file)
        self.studio = _studio(data_dir)

    def __enter__(self) -> tuple[Studio, str]:
        try:
            return self.studio, privacy.open_user(self.studio, self.key)
        except BaseException:
            self.studio.close()
            raise

    def __exit__(self, *exc_info) -> None:
        self.studio.close()


def _state_line(state: consents.ConsentState) -> str:
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
    with _studio(data_dir) as studio:
        key, _ = privacy.create_user(studio)
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
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        summary = privacy.account_summary(studio, user_id)
    if as_json:
        click.echo(json.dumps(_jsonable(summary), indent=2))
        return
    click.echo(f"Display name: {summary['display_name'] or '(none)'}")
    click.echo(f"Created: {summary['created_at'].isoformat(sep=' ', timespec='seconds')} UTC")
    click.echo(f"Age confirmed: {'yes' if summary['age_confirmed'] else 'no'}")
    click.echo(f"Processing restricted: {'yes' if summary['restricted'] else 'no'}")
    for state in summary["consents"].values():
        click.echo(f"Consent {_state_line(state)}")
    if summary["needs_notice"]:
        click.echo(privacy.notice_text())
    rows = ", ".join(f"{table} {count}" for table, count in summary["rows"].items())
    click.echo(f"Stored rows: {rows}")


def _jsonable(value):
    from dataclasses import asdict, is_dataclass

    from ..privacy.jsonout import json_value

    if is_dataclass(value):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return json_value(value)


@user.command("update")
@click.option("--display-name", required=True, help="New display name ('' removes it).")
@user_key_options
def user_update(display_name: str, data_dir, user_key, user_key_file) -> None:
    """Correct the profile's editable fields.

    Example: gempix user update --display-name "Ada" --user-key-file my-key.txt
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        privacy.update_profile(studio, user_id, display_name=display_name)
    click.echo("Profile updated.")


@user.command("role")
@click.argument("role", type=click.Choice(ROLES))
@user_key_options
def user_role(role: str, data_dir, user_key, user_key_file) -> None:
    """Give the account a role: admins see the web app's Analytics tab.

    Works while the app runs too (reload the page to see the tab).

    Example: gempix user role admin --user-key-file my-key.txt
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.store.update_user(user_id, role=role)
    click.echo(f"Role set: {role}.")


@user.command("confirm-age")
@user_key_options
def user_confirm_age(data_dir, user_key, user_key_file) -> None:
    """Confirm that you are at least the minimum age (needed before your first image)."""
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        privacy.confirm_age(studio.store, user_id)
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
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        states = privacy.consent_status(studio, user_id)
    for state in states.values():
        click.echo(_state_line(state))


def _consent_command(granted: bool):
    verb = "grant" if granted else "withdraw"
    help_text = (
        f"{verb.capitalize()} consent for PURPOSE (training or analytics); logged in the ledger."
        f"\n\nExample: gempix consent {verb} training --user-key-file my-key.txt"
    )

    @consent.command(verb, help=help_text)
    @click.argument("purpose", type=click.Choice(list(consents.PURPOSES)))
    @user_key_options
    def command(purpose, data_dir, user_key, user_key_file) -> None:
        with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
            change = privacy.grant_consent if granted else privacy.withdraw_consent
            state = change(studio, user_id, purpose, method=METHOD)
        click.echo(_state_line(state))

    return command


consent_grant = _consent_command(True)
consent_withdraw = _consent_command(False)


@cli.command("policy")
@click.option("--ack", is_flag=True, help="Record that the user has read the current version.")
@click.option("--user-key", help="Your user key (with --ack).")
@click.option(
    "--user-key-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the user key from this file (with --ack).",
)
@data_dir_option
def policy(ack: bool, user_key, user_key_file, data_dir) -> None:
    """Print the privacy policy with its version and date; --ack records that you read it."""
    current = privacy.load_policy()
    if ack:
        with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
            privacy.acknowledge_policy(studio, user_id, current.version)
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
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        target = Path(out) if out else Path(privacy.export_filename(studio, user_id))
        result = privacy.export(studio, user_id, target)
    click.echo(f"{result.path}  {result.files} files, {result.bytes:,} bytes")


@cli.command("erase")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--cache-dir",
    "cache_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Also delete copies of your files in this folder (e.g. Gradio's cache); repeatable.",
)
@user_key_options
def erase_command(yes: bool, cache_dirs, data_dir, user_key, user_key_file) -> None:
    """Delete everything of yours, verify it, and print what was removed.

    Every row and file, copies in cache folders, and the deleted values in the database
    files (their pages are overwritten). Afterwards your key is unknown. This cannot be undone.

    Example: gempix erase --user-key-file my-key.txt --yes
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        if not yes:
            click.confirm(
                "Erase all your images, characters, styles, consents and API keys? "
                "This cannot be undone",
                abort=True,
            )
        report = privacy.erase(studio, user_id, cache_dirs)
    rows = ", ".join(f"{table} {count}" for table, count in report.rows.items() if count)
    click.echo(f"Erased rows: {rows or 'none'}")
    click.echo(
        f"Erased files: {report.files} ({report.bytes:,} bytes, {report.cached_copies} cached "
        f"copies); database scrubbed; verified in {report.seconds:.1f} s."
    )


@cli.command("delete-image")
@click.argument("image_ids", nargs=-1, required=True)
@click.option(
    "--cache-dir",
    "cache_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Also delete copies in this folder; repeatable.",
)
@user_key_options
def delete_image_command(image_ids, cache_dirs, data_dir, user_key, user_key_file) -> None:
    """Delete one or more of your images (rows, files, cached copies), for good.

    Example: gempix delete-image 3f2a... --user-key-file my-key.txt
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        counts = privacy.delete_images(studio, user_id, list(image_ids), cache_dirs)
    click.echo(f"Deleted {counts['images']} image(s), {counts['files']} file(s).")


@cli.command("restrict")
@click.option("--lift", is_flag=True, help="Lift the restriction instead.")
@user_key_options
def restrict_command(lift: bool, data_dir, user_key, user_key_file) -> None:
    """Restrict processing: your data is kept but used for no analytics and no training.

    Example: gempix restrict --user-key-file my-key.txt   (undo: --lift)
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        (privacy.lift_restriction if lift else privacy.restrict)(studio, user_id)
    click.echo("Restriction lifted." if lift else "Processing restricted.")


@cli.command("object")
@click.option("--withdraw", is_flag=True, help="Withdraw the objection instead.")
@user_key_options
def object_command(withdraw: bool, data_dir, user_key, user_key_file) -> None:
    """Object to analytics: your activity produces no usage events any more.

    Example: gempix object --user-key-file my-key.txt   (undo: --withdraw)
    """
    with _Session(data_dir, user_key, user_key_file) as (studio, user_id):
        if withdraw:
            privacy.withdraw_objection(studio, user_id, method=METHOD)
        else:
            privacy.object_to_analytics(studio, user_id, method=METHOD)
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
    with _studio(data_dir) as studio:
        result = privacy.training_manifest(studio, out)
    click.echo(f"{result.path}  {result.generations} generations")
