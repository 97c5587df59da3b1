"""`gempix models` and `gempix download`: what can run here, and fetching it for offline use."""

from __future__ import annotations

import click

from ..service import Studio
from ..settings import Settings
from . import cli, data_dir_option


@cli.command()
@data_dir_option
def models(data_dir):
    """List model presets: native size, default steps, license, and whether it is here."""
    studio = Studio(Settings.load(data_dir=data_dir))
    click.echo(
        f"auto  ->  {studio.AUTO_MODELS['gpu']} on a GPU, {studio.AUTO_MODELS['cpu']} on a CPU"
    )
    for preset, here in studio.catalogue():
        width, height = preset.native
        source = "built locally" if preset.is_tiny else preset.repo_id
        click.echo(
            f"{preset.name:<13} {width}x{height:<5} steps {preset.steps:<3} "
            f"{'downloaded' if here else 'not downloaded':<15} {source}\n"
            f"{'':<14}{preset.description}\n"
            f"{'':<14}License: {preset.license} <{preset.license_url}>"
        )


@cli.command()
@click.argument("model", type=click.STRING)
@data_dir_option
def download(model, data_dir):
    """Fetch MODEL (a preset, a repo id, or esrgan) into the local cache for offline use.

    Example: gempix download sd-turbo; gempix download esrgan (the 4K upscaler, 67 MB)
    """
    click.echo(Studio(Settings.load(data_dir=data_dir)).download(model))
