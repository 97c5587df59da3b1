"""The API tab: the user's own API keys (created and shown once, listed, revoked) and a short
example of calling the HTTP API with one."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import ValidationError
from . import format as fmt
from .context import Ctx
from .errors import guarded

CURL_EXAMPLE = """\
# Generate an image with your key (paste the gpx_... key you created above)
curl -s -X POST "{base}/api/v1/generate" \\
  -H "Authorization: Bearer gpx_..." \\
  -H "Content-Type: application/json" \\
  -d '{{"prompt": "a lighthouse on a cliff at dawn", "styles": ["watercolor"], "seed": 7}}'

# The same image as a PNG file
curl -s -X POST "{base}/api/v1/generate" -H "Authorization: Bearer gpx_..." \\
  -H "Accept: image/png" -H "Content-Type: application/json" \\
  -d '{{"prompt": "a red fox"}}' -o fox.png

# Every route: {base}/api/v1/docs
"""


def _table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            row["prefix"],
            row["name"],
            row["role"],
            fmt.when(row.get("created_at")),
            fmt.when(row.get("last_used_at")) or "never",
            fmt.when(row.get("revoked_at")) or "active",
        ]
        for row in rows
    ]


def build(ctx: Ctx) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("API", id="api") as c["tab"]:
        gr.Markdown(
            "Use GemPix from your own programs with an **API key**. A key acts as you: "
            "images it makes appear in your gallery. The full key is shown **once**, when you "
            "create it; we store only a hash of it."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                c["name"] = gr.Textbox(
                    label="Key name", max_length=64, max_lines=1, placeholder="my laptop"
                )
                c["create"] = gr.Button("Create key", variant="primary")
                c["new_key"] = gr.Textbox(
                    label="Your new key (copy it now: it is shown only once)",
                    interactive=False,
                    buttons=["copy"],
                )
            with gr.Column(scale=2, min_width=320):
                c["table"] = gr.Dataframe(
                    headers=["prefix", "name", "role", "created", "last used", "status"],
                    value=[],
                    label="Your API keys",
                    interactive=False,
                )
                with gr.Row(equal_height=False):
                    c["picked"] = gr.Dropdown(choices=[], label="Key to revoke", scale=3)
                    c["revoke"] = gr.Button("Revoke key", variant="stop", size="sm", scale=1)
        c["example"] = gr.Code(
            CURL_EXAMPLE.format(base="http://127.0.0.1:7860"),
            language="shell",
            label="Example",
            interactive=False,
        )
    _wire(ctx, c)
    return c


def _view(ctx: Ctx, user_id: str) -> tuple[Any, ...]:
    if ctx.studio.privacy.user(user_id) is None:
        return [], gr.update(choices=[], value=None)
    rows = ctx.studio.keys.list(user_id)
    active = [
        (f"{row['name']} ({row['prefix']})", row["prefix"])
        for row in rows
        if not row.get("revoked_at")
    ]
    return _table(rows), gr.update(choices=active, value=None)


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    key = ctx.key
    outputs = [c["table"], c["picked"]]

    @guarded
    def show(profile: gr.OAuthProfile | None, key_value, request: gr.Request):
        base = str(getattr(request, "request", request).base_url).rstrip("/") if request else ""
        example = CURL_EXAMPLE.format(base=base or "http://127.0.0.1:7860")
        return *_view(ctx, ctx.uid(key_value, profile)), example

    c["show"] = show
    c["outputs"] = [*outputs, c["example"]]
    c["tab"].select(show, [key], c["outputs"], api_visibility="private")

    @guarded
    def create(profile: gr.OAuthProfile | None, key_value, name):
        user_id = ctx.uid(key_value, profile)
        if ctx.studio.privacy.user(user_id) is None:
            raise ValidationError("Please confirm your age at the top of the page first.")
        full_key, _row = ctx.studio.keys.create(user_id, "user", (name or "").strip())
        gr.Info("Key created. Copy it now: it will not be shown again.")
        return full_key, "", *_view(ctx, user_id)

    c["create"].click(
        create, [key, c["name"]], [c["new_key"], c["name"], *outputs], api_name="create_api_key"
    )

    @guarded
    def revoke(profile: gr.OAuthProfile | None, key_value, prefix):
        user_id = ctx.uid(key_value, profile)
        if not prefix:
            raise ValidationError("Choose a key to revoke first.")
        ctx.studio.keys.revoke(user_id, prefix)
        gr.Info("Key revoked.")
        return _view(ctx, user_id)

    c["revoke"].click(revoke, [key, c["picked"]], outputs, api_name="revoke_api_key")
