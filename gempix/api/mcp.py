"""Generation as an MCP tool, through Gradio's MCP server (``gempix serve --mcp``).

A small Blocks app holds one API-only endpoint, ``generate_image``, with typed parameters and
a docstring: Gradio turns them into the tool's name, description and JSON schema. The server
mounts it at ``/mcp`` with ``mcp_server=True``, so MCP clients connect to
``<server>/mcp/gradio_api/mcp/`` (streamable HTTP). The tool call carries the API key as an
HTTP header of the MCP connection (``Authorization: Bearer gpx_...``); it runs exactly like
``POST /api/v1/generate``: the key's rate limits, the age gate, the one GPU worker, the
request log (route ``/mcp/generate_image``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import gradio as gr

from ..errors import GemPixError
from ..keys import InvalidKeyError, KeyInfo
from .context import API_PREFIX, ApiContext
from .errors import INTERNAL_ERROR, log
from .ratelimit import client_id
from .routes.generate import prepare, run_generation
from .schemas import GenerateBody

TOOL_ROUTE = "/mcp/generate_image"
MCP_PATH = "/mcp"


def build_mcp(ctx: ApiContext) -> gr.Blocks:
    """The Blocks app whose one endpoint is the ``generate_image`` tool."""

    def generate_image(
        prompt: str,
        negative_prompt: str = "",
        seed: int = -1,
        steps: int = 0,
        aspect: str = "1:1",
        resolution: str = "native",
        styles: str = "",
        authorization: gr.Header | None = None,
        request: gr.Request = None,
    ) -> str:
        """Generate an image with GemPix from a text prompt; it is saved to your gallery.

        The MCP connection must send your GemPix API key as the HTTP header
        'Authorization: Bearer gpx_...'.

        Args:
            prompt: What to draw (up to 2000 characters).
            negative_prompt: What the image should not show.
            seed: Seed for a reproducible image; -1 picks a random one.
            steps: Denoising steps; 0 uses the model's default.
            aspect: Aspect ratio, one of 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3, 21:9.
            resolution: Output size class: native, 2k or 4k.
            styles: Style preset names separated by commas (see GET /api/v1/styles).

        Returns:
            JSON: the model, warnings, and each image's id, seed, size and the URL of its
            PNG under /api/v1/images (fetch it with the same key).
        """
        started = time.perf_counter()
        key: KeyInfo | None = None
        status, error_class = 200, None
        try:
            try:
                key = ctx.studio.keys.verify(authorization)
            except InvalidKeyError:  # guessing keys costs as much as over HTTP (auth.py)
                client = getattr(request, "client", None)
                ctx.limits.check("anonymous", client_id(getattr(client, "host", None)))
                raise
            ctx.limits.check("requests", key.prefix)
            ctx.limits.check("generate", key.prefix)
            body = GenerateBody(
                prompt=prompt,
                negative_prompt=negative_prompt or "",
                seed=None if seed is None or seed < 0 else int(seed),
                steps=int(steps) if steps else None,
                aspect=aspect or None,
                resolution=resolution or "native",
                styles=[name.strip() for name in (styles or "").split(",") if name.strip()],
            )
            request = prepare(body, ctx, key.user_id)
            job = ctx.gpu.submit(
                lambda job: run_generation(ctx, request, key.user_id, job),
                ctx.config.generate_timeout,
            )
            result = ctx.gpu.result(job)
            return _tool_result(result)
        except GemPixError as error:
            status, error_class = int(getattr(error, "status", 400)), type(error).__name__
            raise gr.Error(error.message if status != 500 else INTERNAL_ERROR) from None
        except Exception as error:  # noqa: BLE001 - the tool answers a generic message
            status, error_class = 500, "InternalError"
            log.error("unexpected %s in the MCP tool", type(error).__name__, exc_info=True)
            raise gr.Error(INTERNAL_ERROR) from None
        finally:
            ctx.record(
                TOOL_ROUTE,
                "POST",
                status,
                (time.perf_counter() - started) * 1000,
                key=key,
                error_class=error_class,
            )

    with gr.Blocks(title="GemPix MCP", analytics_enabled=False) as blocks:
        gr.Markdown("GemPix MCP server: one tool, `generate_image`.")
        gr.api(generate_image, api_name="generate_image", queue=False)
    return blocks


def _tool_result(result: Any) -> str:
    return json.dumps(
        {
            "model": result.model,
            "warnings": result.warnings,
            "images": [
                {
                    "id": image.id,
                    "seed": image.seed,
                    "width": image.width,
                    "height": image.height,
                    "url": f"{API_PREFIX}/images/{image.id}",
                }
                for image in result.images
            ],
        }
    )
