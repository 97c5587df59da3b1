"""`gempix serve`: the web app, the HTTP API and (optionally) MCP, in one process."""

from __future__ import annotations

import click

from . import cli
from .generate import model_options, model_settings, speed_options


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for others).")
@click.option("--port", type=int, help="Port (default 7860, or GRADIO_SERVER_PORT / PORT).")
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate (PEM): serve HTTPS. Needs --ssl-keyfile.",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS private key (PEM) of --ssl-certfile.",
)
@click.option(
    "--mcp", is_flag=True, help="Also serve the MCP server (generate, list, verify) at /mcp/."
)
@click.option(
    "--warmup",
    is_flag=True,
    default=None,
    help="Generate one image at start-up (compiling, with --compile) before serving.",
)
@click.option(
    "--workers",
    help="Draw on Ray Serve workers: local-ray:N (N replicas here), ray://HOST:PORT or "
    "ray:ADDRESS (a running cluster). Default: in this process (GEMPIX_WORKERS).",
)
@model_options
@speed_options
def serve(
    host,
    port,
    ssl_certfile,
    ssl_keyfile,
    mcp,
    warmup,
    workers,
    model,
    data_dir,
    device,
    memory,
    compile_model,
):
    """Start GemPix: the web app at /, the HTTP API at /api/v1 (docs: /api/v1/docs).

    Example: gempix serve --host 0.0.0.0 --ssl-certfile cert.pem --ssl-keyfile key.pem --mcp
    """
    from ..server import serve as run

    settings = model_settings(
        model,
        data_dir,
        device,
        memory,
        compile_model,
        host=host,
        port=port,
        warmup=warmup,
        workers=workers,
    )
    run(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, mcp=mcp)
