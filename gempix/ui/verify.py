"""The Verify tab: upload any image and see which provenance marks it carries.

The report is the core's (``studio.provenance.verify``), shown as text. The upload arrives
as a file (``gr.File``, not ``gr.Image``, which would re-encode it and drop the C2PA
manifest before it could be read), is read once and deleted from Gradio's cache at once:
nothing of it is kept, so there is nothing to register or erase later.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import ValidationError
from .context import Ctx
from .errors import guarded

INTRO = (
    "Check any image, from GemPix or anywhere else: its signed **C2PA** manifest (valid, "
    "untrusted, invalid or absent, with the chain of images it was made from), the **IPTC** "
    '"made by AI" label, GemPix\'s **invisible watermark** (which survives metadata '
    "stripping, JPEG, resizing and crops) and **GemPix parameters**. Nothing you upload here "
    "is kept. Finding none of these proves nothing about how an image was made."
)
EMPTY = "Upload an image and press **Verify**."
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")
SHOWN_PARAMS = ("model", "seed", "steps", "guidance", "width", "height", "created_at")


def _plain(text: Any) -> str:
    """Text from the image (titles, parameters) shown literally, never as Markdown."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def report_markdown(report: Any) -> str:
    """The verify report as the page shows it: one line per check, then the chain."""
    lines = [f"### {_plain(report.format)} image, {report.width}×{report.height}", ""]
    lines += [f"- {_plain(line)}" for line in report.lines()]
    for depth, manifest in enumerate(report.c2pa.chain):
        lines += [
            "",
            f"**{'Signed image' if depth == 0 else 'Made from'}:** {_plain(manifest.title)} "
            f"· by {_plain(manifest.claim_generator or 'unknown tool')} "
            f"· signed by {_plain(manifest.signed_by or 'unknown')} "
            f"· actions {_plain(', '.join(manifest.actions) or 'none')}",
        ]
    params = report.gempix_params or {}
    shown = [(name, params[name]) for name in SHOWN_PARAMS if name in params]
    if shown:
        lines += ["", "**GemPix parameters:** " + " · ".join(f"{n} {_plain(v)}" for n, v in shown)]
    return "\n".join(lines)


def build(ctx: Ctx) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Verify", id="verify") as c["tab"]:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                c["file"] = gr.File(
                    label="Image to verify (PNG, JPEG, WebP...)",
                    file_types=["image"],
                    file_count="single",
                    type="filepath",
                )
                c["verify"] = gr.Button("Verify", variant="primary")
            with gr.Column(scale=2):
                c["report"] = gr.Markdown(EMPTY, elem_id="verify-report")

    @guarded
    def verify(path: str | None) -> str:
        """The content credentials of an uploaded image (C2PA, IPTC, watermark, parameters)."""
        if not path:
            raise ValidationError("image: choose an image to verify first.")
        upload = Path(path)
        try:
            report = ctx.studio.provenance.verify(upload)
        finally:
            if upload.resolve().is_relative_to(ctx.cache_dir.resolve()):
                upload.unlink(missing_ok=True)
        return report_markdown(report)

    c["verify"].click(verify, [c["file"]], [c["report"]], api_name="verify")
    return c
