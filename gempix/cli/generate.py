"""`gempix generate`: the short common case."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..engine.request import (
    DEFAULT_CHARACTER_STRENGTH,
    DEFAULT_STYLE_STRENGTH,
    UPSCALERS,
    GenerationRequest,
)
from ..engine.sizes import ASPECTS, RESOLUTIONS, parse_size
from ..service import GeneratedImage, Studio
from . import cli, load_settings
from .progress import ProgressBar


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


def speed_settings(memory: str | None, compile_model: bool | None) -> dict:
    """Settings overrides from --memory/--compile (None: the environment decides)."""
    return {"memory": memory, "compile": "full" if compile_model else None}


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


@cli.command()
@click.argument("prompt")
@click.option("--negative", default="", help="What the image should not show.")
@click.option(
    "--style",
    "styles",
    multiple=True,
    help="Style preset; repeatable, applied in order (see gempix styles).",
)
@click.option("--seed", type=int, help="Seed of the first image; random when left out.")
@click.option("--steps", type=int, help="Denoising steps (default: the model's).")
@click.option("--guidance", type=float, help="Classifier-free guidance (0 for turbo models).")
@click.option(
    "--size",
    help="Output size WIDTHxHEIGHT, e.g. 768x512; up to 4096x4096 (past 2048 it is upscaled).",
)
@click.option("--aspect", type=click.Choice(list(ASPECTS)), help="Aspect ratio.")
@click.option(
    "--resolution",
    type=click.Choice(list(RESOLUTIONS)),
    default="native",
    show_default=True,
    help="Output size class; 2k/4k upscale the native image.",
)
@click.option(
    "--upscaler",
    type=click.Choice(list(UPSCALERS)),
    default="auto",
    show_default=True,
    help="How 2k/4k and large sizes are reached: esrgan (model), lanczos, detail (esrgan or "
    "lanczos, then a diffusion detail pass); auto is esrgan when its weights are here.",
)
@click.option("--num", "num_images", type=int, default=1, show_default=True, help="Images (1-8).")
@click.option("--init", "init_image", type=click.Path(), help="Start from this image.")
@click.option("--strength", type=float, default=0.6, show_default=True, help="Init image change.")
@click.option("--character", help="Name of one of your saved characters (see gempix characters).")
@click.option(
    "--ref",
    "references",
    multiple=True,
    type=click.Path(),
    help="A one-off character instead: a reference image; repeatable, 1-4.",
)
@click.option(
    "--character-strength",
    type=float,
    help=f"0 (off) to 2; default: the character's own, else {DEFAULT_CHARACTER_STRENGTH}.",
)
@click.option(
    "--face", "character_face", is_flag=True, help="The character is a face: plus-face weights."
)
@click.option("--style-image", type=click.Path(), help="Reference image whose style to follow.")
@click.option(
    "--style-strength",
    type=float,
    default=DEFAULT_STYLE_STRENGTH,
    show_default=True,
    help="0 (off) to 2.",
)
@click.option("--output", "-o", "out", help="Output file (.png) or folder.")
@model_options
@speed_options
def generate(
    prompt,
    negative,
    styles,
    seed,
    steps,
    guidance,
    size,
    aspect,
    resolution,
    upscaler,
    num_images,
    init_image,
    strength,
    character,
    references,
    character_strength,
    character_face,
    style_image,
    style_strength,
    out,
    model,
    data_dir,
    device,
    memory,
    compile_model,
):
    """Generate images from PROMPT and print where each went with its seed.

    Example: gempix generate "a lighthouse at dawn" --aspect 16:9 --seed 7 -o out/
    """
    settings = load_settings(
        model=model,
        data_dir=data_dir,
        device=device,
        **speed_settings(memory, compile_model),
    )
    width, height = parse_size(size) if size else (None, None)
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        aspect=aspect,
        resolution=resolution,
        upscaler=upscaler,
        num_images=num_images,
        init_image=init_image,
        strength=strength,
        styles=tuple(styles),
        character=character,
        references=tuple(references),
        character_strength=character_strength,
        character_face=character_face,
        style_image=style_image,
        style_strength=style_strength,
    )
    with Studio(settings) as studio, ProgressBar() as progress:
        result = studio.generate(request, front_door="cli", progress=progress)
    for warning in result.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    for image, path in zip(result.images, output_paths(out, result.images), strict=True):
        if path != image.path:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.path, path)
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
@click.option("--size", help="Exact output size WIDTHxHEIGHT instead, up to 4096x4096.")
@click.option(
    "--upscaler",
    type=click.Choice(list(UPSCALERS)),
    default="auto",
    show_default=True,
    help="esrgan, lanczos, or detail (redraws with the image's prompt and seed).",
)
@click.option("--output", "-o", "out", help="Output file (.png) or folder.")
@model_options
def upscale(generation_id, resolution, size, upscaler, out, model, data_dir, device):
    """Upscale the generation GENERATION_ID into a new one and print where it went.

    Example: gempix upscale 3f2a... --resolution 4k --upscaler esrgan -o big.png
    """
    settings = load_settings(model=model, data_dir=data_dir, device=device)
    width, height = parse_size(size) if size else (None, None)
    with Studio(settings) as studio, ProgressBar() as progress:
        result = studio.upscale(
            generation_id,
            resolution=resolution,
            width=width,
            height=height,
            upscaler=upscaler,
            front_door="cli",
            progress=progress,
        )
    for warning in result.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    for picture, path in zip(result.images, output_paths(out, result.images), strict=True):
        if path != picture.path:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(picture.path, path)
        click.echo(f"{path}  {picture.width}x{picture.height}  {picture.params['upscaler']}")
