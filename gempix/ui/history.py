"""The Gallery tab: the user's own images, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import ValidationError
from . import format as fmt
from .context import Ctx
from .create import reuse_outputs, reuse_values, selection
from .edit import wire_send
from .errors import guarded

PER_PAGE = 24


def page_view(ctx: Ctx, user_id: str, page: int) -> tuple[Any, ...]:
    """Gallery items, ids, page label, page number and the pager buttons' states."""
    current = ctx.studio.images.page(user_id, page, PER_PAGE)
    items = [
        (ctx.served(user_id, [row["id"]], row["file_path"]), fmt.caption(row))
        for row in current.items
    ]
    return (
        items,
        [row["id"] for row in current.items],
        fmt.page_label(current),
        current.page,
        gr.update(interactive=current.has_newer),
        gr.update(interactive=current.has_older),
    )


def build(ctx: Ctx) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Gallery", id="gallery") as c["tab"]:
        with gr.Row(equal_height=True):
            c["refresh"] = gr.Button("Refresh", size="sm", scale=0, min_width=100)
            c["newer"] = gr.Button("◀ Newer", size="sm", scale=0, min_width=100, interactive=False)
            c["label"] = gr.Markdown("No images yet.", label="Page", elem_id="gallery-label")
            c["older"] = gr.Button("Older ▶", size="sm", scale=0, min_width=100, interactive=False)
        c["images"] = gr.Gallery(
            label="Your images",
            format="png",
            columns=6,
            height=420,
            object_fit="contain",
            fit_columns=False,
            buttons=["download", "fullscreen"],
            elem_id="history",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                c["selected"] = gr.Textbox(label="Selected image", interactive=False, max_lines=1)
                with gr.Row():
                    c["download_png"] = gr.DownloadButton("Download PNG", size="sm")
                    c["download_jpeg"] = gr.DownloadButton("Download JPEG", size="sm")
                    c["reuse"] = gr.Button("Reuse parameters", size="sm")
                    c["send_to_edit"] = gr.Button(
                        "Send to Edit", size="sm", elem_id="gallery-send-to-edit"
                    )
                    c["use_as_reference"] = gr.Button("Use as reference", size="sm")
                    c["delete"] = gr.Button("Delete image", size="sm", variant="stop")
                c["details"] = gr.Markdown(
                    fmt.EMPTY_DETAILS, label="Image details", elem_classes=["details"]
                )
            with gr.Column(scale=2):
                with gr.Accordion("Delete all my images", open=False):
                    gr.Markdown(
                        "This permanently deletes every image in your gallery and its "
                        "parameters. It cannot be undone."
                    )
                    c["confirm_all"] = gr.Checkbox(
                        label="Yes, permanently delete all my images", value=False
                    )
                    c["delete_all"] = gr.Button("Delete all images", variant="stop")
        c["page"] = gr.State(1)
        c["ids"] = gr.State([])
    _wire(ctx, c)
    wire_send(ctx, c)
    return c


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    key = ctx.key
    view = [c["images"], c["ids"], c["label"], c["page"], c["newer"], c["older"]]
    chosen = [c["selected"], c["details"], c["download_png"], c["download_jpeg"]]

    @guarded
    def show(profile: gr.OAuthProfile | None, key_value, page=1):
        user_id = ctx.uid(key_value, profile)
        return (
            *page_view(ctx, user_id, page or 1),
            "",
            *selection(ctx, user_id, None),
        )

    c["refresh"].click(show, [key, c["page"]], view + chosen, api_name="history")
    c["tab"].select(show, [key, c["page"]], view + chosen, api_visibility="private")
    c["newer"].click(
        lambda p: max(1, int(p or 1) - 1), c["page"], c["page"], api_visibility="private"
    ).then(show, [key, c["page"]], view + chosen, api_visibility="private")
    c["older"].click(
        lambda p: int(p or 1) + 1, c["page"], c["page"], api_visibility="private"
    ).then(show, [key, c["page"]], view + chosen, api_visibility="private")
    c["show"] = show
    c["outputs"] = view + chosen

    @guarded
    def select(evt: gr.SelectData, profile: gr.OAuthProfile | None, key_value, ids):
        user_id = ctx.uid(key_value, profile)
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids or []):
            return "", *selection(ctx, user_id, None)
        return ids[index], *selection(ctx, user_id, ids[index])

    c["images"].select(select, [key, c["ids"]], chosen, api_visibility="private")

    @guarded
    def reuse(profile: gr.OAuthProfile | None, key_value, image_id):
        values = reuse_values(ctx, ctx.uid(key_value, profile), image_id)
        gr.Info("Parameters loaded in the Create tab.")
        return *values, gr.Tabs(selected="create")

    c["reuse"].click(
        reuse,
        [key, c["selected"]],
        [*reuse_outputs(ctx.create), ctx.tabs],
        api_visibility="private",
    )

    @guarded
    def delete(profile: gr.OAuthProfile | None, key_value, image_id, page):
        user_id = ctx.uid(key_value, profile)
        ctx.studio.images.delete(user_id, image_id)
        gr.Info("Image deleted.")
        return *page_view(ctx, user_id, int(page or 1)), "", *selection(ctx, user_id, None)

    c["delete"].click(
        delete, [key, c["selected"], c["page"]], view + chosen, api_visibility="private"
    )

    @guarded
    def delete_all(profile: gr.OAuthProfile | None, key_value, confirmed):
        user_id = ctx.uid(key_value, profile)
        if confirmed is not True:
            raise ValidationError("Tick “Yes, permanently delete all my images” first.")
        count = ctx.studio.images.delete_all(user_id)
        gr.Info(f"Deleted {count} image{'s' if count != 1 else ''}.")
        return *page_view(ctx, user_id, 1), "", *selection(ctx, user_id, None), False

    c["delete_all"].click(
        delete_all,
        [key, c["confirm_all"]],
        [*view, *chosen, c["confirm_all"]],
        api_name="delete_all_images",
    )
