"""`gempix batch`: many prompts from a JSONL file, resumable, across processes or GPUs."""

from __future__ import annotations

import click

from ..batch import run_batch
from . import cli
from .generate import model_options, model_settings, speed_options


@cli.command()
@click.argument("prompts", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder.")
@model_options
@speed_options
def batch(prompts, out, model, data_dir, device, memory, compile_model):
    """Generate every request of PROMPTS (one JSON object per line) into --out.

    Each line holds the fields of a request, named as in the HTTP API (docs/api.md), e.g.
    {"prompt": "a fox", "seed": 1, "styles": ["watercolor"]}. Re-running skips lines already
    done. Spread the work over processes with:
    torchrun --nproc_per_node 2 -m gempix batch PROMPTS -o OUT
    """
    settings = model_settings(model, data_dir, device, memory, compile_model)
    summary = run_batch(settings, prompts, out)
    click.echo(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} skipped "
        f"of {summary.total}; results in {', '.join(str(p) for p in summary.results)}"
    )
