"""`gempix verify IMG`: which provenance marks an image carries, GemPix's or anyone's."""

from __future__ import annotations

import json

import click

from ..service import Studio
from ..settings import Settings
from . import cli


@cli.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def verify(image, as_json):
    """Report IMAGE's content credentials: the C2PA manifest (valid, untrusted, invalid or
    absent) and its chain, the IPTC "made by AI" disclosure, GemPix's invisible watermark
    and GemPix parameters. Works on any PNG, JPEG or WebP; reads nothing else and writes
    nothing.

    Example: gempix verify downloads/picture.jpg
    """
    report = Studio(Settings.load()).provenance.verify(image)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    for line in report.lines():
        click.echo(line)
