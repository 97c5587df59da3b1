"""`gempix models` and `gempix download`: what can run here, and fetching it for offline use."""

from __future__ import annotations

import click

from ..engine.esrgan import download_default
from ..engine.models import download as download_model
from ..engine.models import is_downloaded
from ..engine.presets import AUTO_CPU, AUTO_GPU, PRESETS
from ..engine.tiny import is_built
from . import cli, load_settings


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def models(data_dir):
    """List model presets: native size, default steps, license, and whether it is here."""
    settings = load_settings(data_dir=data_dir)
    click.echo(f"auto  ->  {AUTO_GPU} on a GPU, {AUTO_CPU} on a CPU")
    for preset in PRESETS.values():
        if preset.is_tiny:
            here = is_built(settings.models_dir / "tiny")
            source = "built locally"
        else:
            here = is_downloaded(preset.repo_id)
            source = preset.repo_id
        width, height = preset.native
        click.echo(
            f"{preset.name:<13} {width}x{height:<5} steps {preset.steps:<3} "
            f"{'downloaded' if here else 'not downloaded':<15} {source}\n"
            f"{'':<14}{preset.description}\n"
            f"{'':<14}License: {preset.license} <{preset.license_url}>"
        )


@cli.command()
@click.argument("model", type=click.STRING)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def download(model, data_dir):
    """Fetch MODEL (a preset, a repo id, or esrgan) into the local cache for offline use.

    Example: gempix download sd-turbo; gempix download esrgan (the 4K upscaler, 67 MB)
    """
    settings = load_settings(data_dir=data_dir)
    if model == "esrgan":
        click.echo(download_default(settings.hub_timeout))
        return
    click.echo(download_model(settings, model))
