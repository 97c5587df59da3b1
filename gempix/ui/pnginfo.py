"""The Create tab's *PNG info* panel: drop an image, read the parameters it carries (GemPix,
A1111/Forge/Fooocus, ComfyUI; ``studio.image_info``), and "Use these parameters" to fill the
Create form with them."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..params import field_range
from .context import Ctx
from .errors import guarded

FILLED = ("prompt", "negative_prompt", "seed", "random_seed", "steps", "guidance")


def build(c: dict[str, Any], file_types: list[str]) -> None:
    """The panel's components, into the Create tab's ``c`` (call inside its column)."""
    with gr.Accordion("PNG info: read an image's parameters", open=False):
        c["info_file"] = gr.File(
            label="Drop a PNG or JPEG (GemPix, A1111/Forge/Fooocus, ComfyUI)",
            file_types=file_types,
            elem_id="png-info-file",
        )
        c["info_text"] = gr.Markdown("", elem_id="png-info")
        c["info_use"] = gr.Button("Use these parameters", size="sm", elem_id="png-info-use")
        c["info_fields"] = gr.State({})


def describe(kind: str | None, message: str, model: str | None, fields: dict) -> str:
    if kind is None:
        return message
    lines = [f"**{message}**", ""]
    lines += [f"- model: `{model}`"] if model else []
    lines += [f"- {name}: `{value}`" for name, value in fields.items()]
    return "\n".join(lines)


def wire(ctx: Ctx, c: dict[str, Any], steps_limit: int) -> None:
    @guarded
    def read(profile: gr.OAuthProfile | None, key_value, path):
        if not path:
            return "", {}
        ctx.uploaded(ctx.uid(key_value, profile), ["upload"], [path])
        found = ctx.studio.image_info(path)
        return describe(found.kind, found.message, found.model, found.fields), found.fields

    c["info_file"].upload(
        read,
        [ctx.key, c["info_file"]],
        [c["info_text"], c["info_fields"]],
        api_visibility="private",
        show_progress_on=c["info_text"],
    )

    def use(fields: dict):
        if not fields:
            raise gr.Error("Drop an image with parameters first.", print_exception=False)
        low, high = field_range("guidance")
        values = {
            "prompt": fields.get("prompt", gr.skip()),
            "negative_prompt": fields.get("negative_prompt", ""),
            "seed": fields.get("seed", gr.skip()),
            "random_seed": "seed" not in fields,
            "steps": min(max(1, fields["steps"]), steps_limit) if "steps" in fields else gr.skip(),
            "guidance": min(max(low, fields["guidance"]), high)
            if "guidance" in fields
            else gr.skip(),
        }
        gr.Info("Parameters filled in from the image.")
        return [values[name] for name in FILLED]

    c["info_use"].click(
        use,
        c["info_fields"],
        [c[name] for name in FILLED],
        api_visibility="private",
        show_progress_on=c["info_text"],
    )
