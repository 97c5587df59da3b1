"""`gempix styles`: the style preset library, to pick names for `gempix generate --style`."""

from __future__ import annotations

import json

import click

from ..errors import ValidationError
from ..styles import categories, load_presets
from . import cli


@cli.command()
@click.option("--category", "-c", help="Only this category, e.g. photography.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="table: name, category, label; json: every field, templates included.",
)
def styles(category, output_format):
    """List the style presets: name, category and label.

    Use a name with gempix generate --style NAME (repeatable: up to five, applied in order).

    Example: gempix styles --category painting
    """
    presets = list(load_presets().values())
    if category is not None:
        wanted = category.strip().lower()
        known = categories()
        if wanted not in known:
            raise ValidationError(
                f"category: {category!r} is not a style category; choose one of {', '.join(known)}."
            )
        presets = [style for style in presets if style.category == wanted]
    if output_format.lower() == "json":
        click.echo(json.dumps([style.as_dict() for style in presets], indent=2, ensure_ascii=False))
        return
    name_width = max(len("NAME"), *(len(style.name) for style in presets))
    category_width = max(len("CATEGORY"), *(len(style.category) for style in presets))
    click.echo(f"{'NAME':<{name_width}}  {'CATEGORY':<{category_width}}  LABEL")
    for style in presets:
        click.echo(f"{style.name:<{name_width}}  {style.category:<{category_width}}  {style.label}")
