"""`gempix models` and `gempix download`: what can run here, and fetching it for offline use."""

from __future__ import annotations

import click

from ..service import Studio
from ..settings import Settings
from . import cli, data_dir_option

WIDTH = 20  # the longest preset name, tiny-qwen-image-edit


def _yes(value) -> str:
    return "yes" if value else "no"


def _count(parameters: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)


@cli.command()
@data_dir_option
def models(data_dir):
    """List model presets: size, memory per mode, license, what each reads, whether it is here."""
    studio = Studio(Settings.load(data_dir=data_dir))
    pick = studio.auto_pick()
    click.echo(f"auto  ->  {pick.name} here: {pick.reason}")
    for info in studio.catalogue():
        width, height = info.native
        indent = " " * (WIDTH + 1)
        memory = ", ".join(f"{mode} {gib} GiB" for mode, gib in info.memory_gib.items())
        references = str(info.references) if info.references else "none"
        if info.ip_adapter:
            references += " (IP-Adapter: style, characters)"
        click.echo(
            f"{info.name:<{WIDTH}} {width}x{height:<5} steps {info.steps:<3} "
            f"{'downloaded' if info.downloaded else 'not downloaded':<15} {info.source}\n"
            f"{indent}{info.description}\n"
            f"{indent}{_count(info.parameters)} parameters, {info.dtype}; "
            f"GPU memory per mode: {memory}\n"
            f"{indent}edits: {_yes(info.can_edit)}; reference images: {references}; "
            f"negative prompt: {_yes(info.negative_prompt)}; img2img: {_yes(info.img2img)}; "
            f"live previews: {info.previews}\n"
            f"{indent}License: {info.license} <{info.license_url}>"
        )


@cli.command()
@click.argument("model", type=click.STRING)
@data_dir_option
def download(model, data_dir):
    """Fetch MODEL (a preset, a repo id, or esrgan) into the local cache for offline use.

    Example: gempix download sd-turbo; gempix download esrgan (the 4K upscaler, 67 MB)
    """
    click.echo(Studio(Settings.load(data_dir=data_dir)).download(model))
