"""`gempix characters`: the local user's character library, for `gempix generate --character`.

These open the data directory's database, so run them while the server is stopped; while it
runs, the web app's Characters tab does the same.
"""

from __future__ import annotations

import click

from .. import gallery
from ..privacy.identity import LOCAL_USER
from ..references import find_character
from ..service import Studio
from . import cli, load_settings

IMAGES = click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
CONFIRM = click.option(
    "--confirm-rights",
    is_flag=True,
    help="Confirm you have the rights to use these images (required; stored with the character).",
)
DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")


@cli.group()
def characters() -> None:
    """Characters: a name and 1-4 reference images, to appear again and again.

    Example: gempix characters create Mira front.png side.png --confirm-rights
    """


@characters.command("list")
@DATA_DIR
def list_(data_dir: str | None) -> None:
    """Your characters: name, number of references, strength."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        rows = gallery.list_characters(studio, LOCAL_USER)
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
@DATA_DIR
def create(name, images, confirm_rights, strength, data_dir) -> None:
    """Save a character from 1-4 reference images (checked, turned upright, stored as PNG)."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        gallery.create_character(
            studio, LOCAL_USER, name, list(images), confirm_rights, strength=strength
        )
    click.echo(f"Saved {name} ({len(images)} references). Use it: gempix generate --character")


@characters.command()
@click.argument("name")
@click.argument("new_name")
@DATA_DIR
def rename(name, new_name, data_dir) -> None:
    """Rename a character."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        row = find_character(studio.store, LOCAL_USER, name)
        gallery.rename_character(studio, LOCAL_USER, row["id"], new_name)
    click.echo(f"Renamed {name} to {new_name}.")


@characters.command()
@click.argument("name")
@IMAGES
@CONFIRM
@DATA_DIR
def replace(name, images, confirm_rights, data_dir) -> None:
    """Replace a character's references (the old files are deleted)."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        row = find_character(studio.store, LOCAL_USER, name)
        gallery.replace_references(studio, LOCAL_USER, row["id"], list(images), confirm_rights)
    click.echo(f"Replaced the references of {name} ({len(images)} images).")


@characters.command()
@click.argument("name")
@DATA_DIR
def delete(name, data_dir) -> None:
    """Delete a character and its reference files."""
    with Studio(load_settings(data_dir=data_dir)) as studio:
        row = find_character(studio.store, LOCAL_USER, name)
        gallery.delete_character(studio, LOCAL_USER, row["id"])
    click.echo(f"Deleted {name}.")
