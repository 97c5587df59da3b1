"""`gempix characters`: a character library, for `gempix generate --character`.

They act for the local operator, or for the account of ``--user-key``, through
``studio.characters`` like the web app's Characters tab and the HTTP API.
"""

from __future__ import annotations

import click

from ..settings import Settings
from . import cli, session, user_key_options

IMAGES = click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
CONFIRM = click.option(
    "--confirm-rights",
    is_flag=True,
    help="Confirm you have the rights to use these images (required; stored with the character).",
)


def _session(data_dir, user_key, user_key_file):
    return session(Settings.load(data_dir=data_dir), user_key, user_key_file, operator=True)


@cli.group()
def characters() -> None:
    """Characters: a name and 1-4 reference images, to appear again and again.

    Example: gempix characters create Mira front.png side.png --confirm-rights
    """


@characters.command("list")
@user_key_options
def list_(data_dir, user_key, user_key_file) -> None:
    """Your characters: name, number of references, strength."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        rows = studio.characters.list(user_id)
    if not rows:
        click.echo("No characters yet. Create one with: gempix characters create NAME IMAGE...")
        return
    for row in rows:
        strength = "default" if row["strength"] is None else f"{row['strength']:g}"
        click.echo(f"{row['name']}  references={len(row['reference_paths'])}  strength={strength}")


@characters.command()
@click.argument("name")
@IMAGES
@CONFIRM
@click.option("--strength", type=float, help="Its default strength, 0 (off) to 2.")
@user_key_options
def create(name, images, confirm_rights, strength, data_dir, user_key, user_key_file) -> None:
    """Save a character from 1-4 reference images (checked, turned upright, stored as PNG)."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.characters.create(user_id, name, list(images), confirm_rights, strength=strength)
    click.echo(f"Saved {name} ({len(images)} references). Use it: gempix generate --character")


@characters.command()
@click.argument("name")
@click.argument("new_name")
@user_key_options
def rename(name, new_name, data_dir, user_key, user_key_file) -> None:
    """Rename a character."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.characters.update(user_id, name, name=new_name)
    click.echo(f"Renamed {name} to {new_name}.")


@characters.command()
@click.argument("name")
@IMAGES
@CONFIRM
@user_key_options
def replace(name, images, confirm_rights, data_dir, user_key, user_key_file) -> None:
    """Replace a character's references (the old files are deleted)."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.characters.update(
            user_id, name, references=list(images), rights_confirmed=confirm_rights
        )
    click.echo(f"Replaced the references of {name} ({len(images)} images).")


@characters.command()
@click.argument("name")
@user_key_options
def delete(name, data_dir, user_key, user_key_file) -> None:
    """Delete a character and its reference files."""
    with _session(data_dir, user_key, user_key_file) as (studio, user_id):
        studio.characters.delete(user_id, name)
    click.echo(f"Deleted {name}.")
