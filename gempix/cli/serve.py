"""`gempix serve`: the web app, exactly as `python app.py` starts it."""

from __future__ import annotations

import click

from . import cli, load_settings
from .generate import model_options


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 7860, or GRADIO_SERVER_PORT / PORT).")
@model_options
def serve(host, port, model, data_dir, device):
    """Start the GemPix web app on this machine."""
    from ..ui.app import launch

    launch(load_settings(host=host, port=port, model=model, data_dir=data_dir, device=device))
