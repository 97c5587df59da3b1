"""`gempix edit` and `gempix info`: edit a picture, read the parameters a picture carries.

The edit options are made from the request model (``params.EditRequest``) like generate's, so
the CLI offers what the API and the web app offer and the model checks it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from ..params import EditRequest
from . import cli, key_options, session
from .generate import copy_out, field_option, model_options, model_settings, speed_options
from .progress import ProgressBar

# The fields ``gempix edit`` offers, in this order (the instruction and source are arguments).
EDIT_FIELDS = (
    "mask",
    "references",
    "outpaint",
    "negative_prompt",
    "seed",
    "steps",
    "guidance",
    "num_images",
    "strength",
    "styles",
    "character",
    "character_strength",
    "character_face",
)
GENERATION_ID = re.compile(r"[0-9a-f]{32}")


class Sides(click.ParamType):
    """``0,0,128,0``: pixels to add left, top, right, bottom."""

    name = "L,T,R,B"

    def convert(self, value: Any, param, ctx) -> tuple[int, ...]:
        parts = [part.strip() for part in str(value).split(",")]
        if len(parts) != 4 or not all(part.isdigit() for part in parts):
            self.fail(f"extend: {value!r} is not LEFT,TOP,RIGHT,BOTTOM, e.g. 0,0,128,0.")
        return tuple(int(part) for part in parts)


def edit_options(command):
    options = [field_option(name, EditRequest.model_fields[name]) for name in EDIT_FIELDS]
    help = "Outpaint by pixels per side instead: LEFT,TOP,RIGHT,BOTTOM."
    options.insert(3, click.option("--extend", "outpaint_pixels", type=Sides(), help=help))
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("source")
@click.argument("instruction")
@edit_options
@click.option("--output", "-o", "out", help="Output file (.png) or folder.")
@key_options
@model_options
@speed_options
def edit(source, instruction, out, user_key, user_key_file, model, data_dir, device, **fields):
    """Edit SOURCE (an image file, or the id of one of your generations) following
    INSTRUCTION, and print where each result went with its seed.

    With --mask only the white area changes (inpaint); --outpaint 16:9 or --extend widens the
    canvas and fills the new area; without either, the model edits by instruction (models
    that can).

    Example: gempix edit photo.png "a red door" --mask door.png --seed 7 -o out/
    """
    settings = model_settings(
        model, data_dir, device, fields.pop("memory"), fields.pop("compile_model")
    )
    given = {
        name: value
        for name, value in fields.items()
        if value not in (None, ()) and value is not False
    }
    if not Path(source).exists() and GENERATION_ID.fullmatch(source):
        given["source_id"] = source
    else:
        given["source"] = source
    request = EditRequest(instruction, **given)
    with session(settings, user_key, user_key_file, operator=True) as (studio, user_id):
        with ProgressBar() as progress:
            result = studio.edit(request, user_id=user_id, front_door="cli", progress=progress)
    for warning in result.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    for image, path in zip(result.images, copy_out(out, result.images), strict=True):
        click.echo(f"{path}  seed={image.seed}  {image.width}x{image.height}")


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print everything found, as JSON.")
def info(image, as_json):
    """Print the generation parameters IMAGE carries (GemPix, A1111/Forge/Fooocus, ComfyUI).

    Example: gempix info downloaded.png
    """
    from ..service import Studio
    from ..settings import Settings

    found = Studio(Settings.load()).image_info(image)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2, ensure_ascii=False, default=str))
        return
    click.echo(found.message)
    if found.model:
        click.echo(f"model: {found.model}")
    for name, value in found.fields.items():
        click.echo(f"{name}: {value}")
