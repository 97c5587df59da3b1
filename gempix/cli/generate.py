"""`gempix generate`: the short common case; `gempix upscale`.

The generate options are made from the request model (``gempix.params``): one option per field,
with its help and default, so the CLI offers exactly what the API and the web app offer and
the model checks it. The prompt is the argument; width and height are ``--size WxH``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import click

from ..params import GenerationRequest, field_choices, field_range
from ..service import GeneratedImage
from ..settings import Settings
from . import cli, key_options, session
from .progress import ProgressBar

# Options whose name is shorter than their field's (the field name is the API's and the web's).
OPTION_NAMES = {
    "negative_prompt": "--negative",
    "num_images": "--num",
    "init_image": "--init",
    "references": "--ref",
    "character_face": "--face",
    "styles": "--style",
    "width": "--size",
    "height": "--size",
}


class Size(click.ParamType):
    """``768x512`` as (width, height), with a message that shows the expected form."""

    name = "WxH"

    def convert(self, value: Any, param, ctx) -> tuple[int, int]:
        parts = str(value).lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            self.fail(f"size: {value!r} is not WIDTHxHEIGHT, e.g. 768x512.", param, ctx)
        return int(parts[0]), int(parts[1])


def option_name(field: str) -> str:
    return OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def field_option(name: str, field):
    """The click option of one request field: its type, help and shown default."""
    annotation, default = field.annotation, field.default
    kinds = {annotation, *getattr(annotation, "__args__", ())}
    settings: dict[str, Any] = {"help": field.description}
    if any(getattr(kind, "__origin__", None) is Literal for kind in kinds):
        settings["type"] = click.Choice(field_choices(name))
    elif bool in kinds:
        settings["is_flag"] = True
    elif getattr(annotation, "__origin__", None) is tuple:
        settings.update(multiple=True, type=click.Path() if name == "references" else str)
    elif name.endswith("image") or name in ("mask", "source"):
        settings["type"] = click.Path()
    else:
        settings["type"] = int if int in kinds else float if float in kinds else str
    if default not in (None, (), False, ""):
        settings.update(default=default, show_default=True)
    return click.option(option_name(name), name, **settings)


def request_options(command):
    """One option per field of ``GenerationRequest`` (the prompt is PROMPT; width and height
    are ``--size``), in the model's order."""
    options = [
        field_option(name, field)
        for name, field in GenerationRequest.model_fields.items()
        if name not in ("prompt", "width", "height")
    ]
    low, high = field_range("width")
    help = f"Width x height, each {low}-{high}, e.g. 768x512 (instead of --aspect); past 2048 "
    options.insert(4, click.option("--size", type=Size(), help=help + "the image is upscaled."))
    for option in reversed(options):
        command = option(command)
    return command


def model_options(command):
    """--model/--data-dir/--device, shared by every command that loads a model."""
    for option in reversed(
        [
            click.option("--model", "-m", help="Preset, repo id or folder (default: auto)."),
            click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder."),
            click.option("--device", help="auto, cpu, cuda or mps."),
        ]
    ):
        command = option(command)
    return command


def speed_options(command):
    """--memory/--compile, shared by every command that generates (docs/performance.md)."""
    for option in reversed(
        [
            click.option(
                "--memory",
                type=click.Choice(["auto", "high", "balanced", "low"]),
                help="Memory mode (default: GEMPIX_MEMORY, auto: the fastest that fits).",
            ),
            click.option(
                "--compile",
                "compile_model",
                is_flag=True,
                default=None,
                help="torch.compile the UNet/transformer, once per image size "
                "(GEMPIX_COMPILE=regional compiles only its repeated blocks).",
            ),
        ]
    ):
        command = option(command)
    return command


def model_settings(model, data_dir, device, memory=None, compile_model=None, **more) -> Settings:
    """Settings with the model, speed and other overrides the options gave (None: unset)."""
    compiled = "full" if compile_model else None
    return Settings.load(
        model=model, data_dir=data_dir, device=device, memory=memory, compile=compiled, **more
    )


def output_paths(out: str | None, images: list[GeneratedImage]) -> list[Path]:
    """Where each image goes: a folder keeps the ids; a file name is numbered for batches."""
    if out is None:
        return [image.path for image in images]
    target = Path(out)
    if target.suffix.lower() != ".png" or target.is_dir():
        return [target / f"{image.id}.png" for image in images]
    if len(images) == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{index + 1}.png") for index in range(len(images))]


def copy_out(out: str | None, images: list[GeneratedImage]) -> list[Path]:
    """Copy each image to where ``-o`` says (nothing without it); where each one is."""
    paths = output_paths(out, images)
    for image, path in zip(images, paths, strict=True):
        if path != image.path:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.path, path)
    return paths


@cli.command()
@click.argument("prompt")
@request_options
@click.option("--output", "-o", "out", help="Output file (.png) or folder.")
@key_options
@model_options
@speed_options
def generate(prompt, size, out, user_key, user_key_file, model, data_dir, device, **fields):
    """Generate images from PROMPT and print where each went with its seed.

    Without a user key the local operator generates; with one, the images go to that
    account's gallery (it must have confirmed its age).

    Example: gempix generate "a lighthouse at dawn" --aspect 16:9 --seed 7 -o out/
    """
    settings = model_settings(
        model, data_dir, device, fields.pop("memory"), fields.pop("compile_model")
    )
    given = {
        name: value
        for name, value in fields.items()
        if value not in (None, ()) and value is not False
    }
    if size is not None:
        given["width"], given["height"] = size
    request = GenerationRequest(prompt, **given)
    with session(settings, user_key, user_key_file, operator=True) as (studio, user_id):
        with ProgressBar() as progress:
            result = studio.generate(request, user_id=user_id, front_door="cli", progress=progress)
    for warning in result.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    for image, path in zip(result.images, copy_out(out, result.images), strict=True):
        score = image.params.get("consistency")
        consistency = "" if score is None else f"  consistency={score:.3f}"
        click.echo(f"{path}  seed={image.seed}  {image.width}x{image.height}{consistency}")


@cli.command()
@click.argument("generation_id")
@click.option(
    "--resolution",
    type=click.Choice(["2k", "4k"]),
    default="4k",
    show_default=True,
    help="Long side 2560 or 3840, keeping the image's aspect ratio.",
)
@click.option(
    "--size", type=Size(), help="Exact output size WIDTHxHEIGHT instead, up to 4096x4096."
)
@click.option(
    "--upscaler",
    type=click.Choice(field_choices("upscaler")),
    default="auto",
    show_default=True,
    help="esrgan, lanczos, or detail (redraws with the image's prompt and seed).",
)
@click.option("--output", "-o", "out", help="Output file (.png) or folder.")
@key_options
@model_options
def upscale(generation_id, resolution, size, upscaler, out, user_key, user_key_file, **options):
    """Upscale the generation GENERATION_ID into a new one and print where it went.

    Example: gempix upscale 3f2a... --resolution 4k --upscaler esrgan -o big.png
    """
    width, height = size or (None, None)
    settings = model_settings(**options)
    with session(settings, user_key, user_key_file, operator=True) as (studio, user_id):
        with ProgressBar() as progress:
            result = studio.upscale(
                generation_id,
                resolution=resolution,
                width=width,
                height=height,
                upscaler=upscaler,
                user_id=user_id,
                front_door="cli",
                progress=progress,
            )
    for warning in result.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    for picture, path in zip(result.images, copy_out(out, result.images), strict=True):
        click.echo(f"{path}  {picture.width}x{picture.height}  {picture.params['upscaler']}")
