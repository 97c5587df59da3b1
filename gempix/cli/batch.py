"""`gempix batch`: many prompts from a JSONL file, resumable, across processes or GPUs."""

from __future__ import annotations

import click

from ..batch import run_batch
from . import cli, load_settings
from .generate import model_options, speed_options, speed_settings


@cli.command()
@click.argument("prompts", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder.")
@model_options
@speed_options
def batch(prompts, out, model, data_dir, device, memory, compile_model):
    """Generate every request of PROMPTS (one JSON object per line) into --out.

    Each line holds GenerationRequest fields, e.g. {"prompt": "a fox", "seed": 1,
    "styles": ["watercolor"]}. Re-running skips lines already done. Spread the work over
    processes with: torchrun --nproc_per_node 2 -m gempix batch PROMPTS -o OUT
    """
    settings = load_settings(
        model=model, data_dir=data_dir, device=device, **speed_settings(memory, compile_model)
    )
    summary = run_batch(settings, prompts, out)
    click.echo(
        f"{summary.done} done, {summary.failed} failed, {summary.skipped} skipped "
        f"of {summary.total}; results in {', '.join(str(p) for p in summary.results)}"
    )
