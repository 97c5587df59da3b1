"""The Edit tab: a source with a mask painted on it (or a mask file), an instruction, up to 3
references and outpaint controls; the same Results, progress, previews and Cancel as Create.

Translation only: the controls become an ``EditRequest`` (``params.py``), which the model
checks, and ``studio.edit`` does the rest (docs/editing.md). "Send to Edit" and "Use as
reference" (Results of Create and Edit, and the Gallery) bring one of the user's images here;
a source sent that way is edited by its id, so the result names it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image, ImageChops

from ..editing import painted
from ..errors import NotFoundError, ValidationError
from ..params import MAX_EDIT_REFERENCES, MAX_EXTEND, MAX_SEED, EditRequest, field_choices
from .context import Ctx
from .create import (
    RESULT_OUTPUTS,
    UPLOAD_TYPES,
    note_queued,
    parameter_names,
    results_panel,
    slider,
    stream_result,
    wire_select,
)
from .errors import guarded

SIDES = ("left", "top", "right", "bottom")
# Switching to the Edit tab by a server update (gr.Tabs(selected=...)) while its editor holds or
# receives a picture stalls Chromium's renderer (docs/web-app.md); a click on the tab does not.
SHOW_EDIT_TAB = """() => [...document.querySelectorAll("button[role=tab]")]
    .find((tab) => tab.innerText.trim() === "Edit").click()"""
# Send to Edit: the picture goes into the editor as the browser's own upload (the path that works).
UPLOAD_INTO_EDITOR = """async (sent) => {
    const editor = "#edit-source";
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    for (let tries = 0; tries < 400 && !document.querySelector(`${editor} canvas`); tries++) {
        await pause(25);
    }
    const input = document.querySelector(`${editor} input[type=file]`);
    if (!sent || !sent.url || !input) return;
    const picture = await (await fetch(sent.url)).blob();
    const files = new DataTransfer();
    files.items.add(new File([picture], sent.orig_name || "image.png", {type: picture.type}));
    input.files = files.files;
    input.dispatchEvent(new Event("change", {bubbles: true}));
}"""


def edit_request(values: dict[str, Any]) -> EditRequest:
    """The request the Edit tab's controls describe. The editor's background is the source
    (unless one of the user's images was sent here: then its id); its brush layer is the
    mask when something is painted on it; a mask file wins over the brush."""
    editor = values.get("editor") or {}
    fields: dict[str, Any] = {
        "prompt": values.get("prompt") or "",
        "negative_prompt": values.get("negative_prompt") or "",
        "steps": values.get("steps"),
        "guidance": values.get("guidance"),
        "num_images": values.get("num_images"),
        "strength": values.get("strength"),
        "references": tuple(values.get("references") or ()),
    }
    if values.get("source_id"):
        fields["source_id"] = values["source_id"]
    elif editor.get("background"):
        fields["source"] = editor["background"]
    layers = [layer for layer in editor.get("layers") or [] if layer and painted(layer)]
    if values.get("mask"):
        fields["mask"] = values["mask"]
    elif layers:
        fields["mask"] = layers[0]
    if values.get("outpaint"):
        fields["outpaint"] = values["outpaint"]
    sides = tuple(int(values.get(f"outpaint_{side}") or 0) for side in SIDES)
    if any(sides):
        fields["outpaint_pixels"] = sides
    if not values.get("random_seed"):
        if values.get("seed") is None:
            raise ValidationError("seed: enter a seed, or tick Random seed.")
        fields["seed"] = values["seed"]
    return EditRequest(**{k: v for k, v in fields.items() if v is not None})


def same_pixels(first: str, second: str) -> bool:
    """Whether two pictures have the same RGB pixels (the editor re-encodes what it is given,
    so names and bytes change, pixels do not). Sizes are compared before any pixel is decoded;
    a file that is not a picture is simply not the same."""
    try:
        with Image.open(first) as one, Image.open(second) as other:
            if one.size != other.size:
                return False
            difference = ImageChops.difference(one.convert("RGB"), other.convert("RGB"))
            return difference.getbbox() is None
    except OSError:
        return False


def build(ctx: Ctx) -> dict[str, Any]:
    preset = ctx.studio.model().preset
    c: dict[str, Any] = {}
    with gr.Tab("Edit", id="edit"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                c["editor"] = gr.ImageEditor(
                    label="Source: upload it, then paint where it may change (inpaint)",
                    type="filepath",
                    format="png",
                    sources=("upload", "clipboard"),
                    layers=False,
                    transforms=(),
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=24),
                    height=420,
                    elem_id="edit-source",
                )
                c["prompt"] = gr.Textbox(
                    label="Instruction",
                    lines=2,
                    max_length=EditRequest.model_fields["prompt"].metadata[-1].max_length,
                    placeholder="make the jacket red · or what to draw where you painted",
                    elem_id="edit-prompt",
                )
                with gr.Row():
                    c["edit_button"] = gr.Button(
                        "Edit", variant="primary", scale=3, elem_id="edit-button"
                    )
                    c["cancel_button"] = gr.Button("Cancel", variant="stop", scale=1)
                c["queued"] = gr.Markdown("", elem_id="edit-queued")
                c["mask"] = gr.File(
                    label="Or a mask file (white where it may change)",
                    file_types=UPLOAD_TYPES,
                    elem_id="edit-mask-file",
                )
                c["references"] = gr.File(
                    label=f"References to combine (up to {MAX_EDIT_REFERENCES}, model permitting)",
                    file_types=UPLOAD_TYPES,
                    file_count="multiple",
                    elem_id="edit-references",
                )
                with gr.Accordion("Outpaint", open=False):
                    c["outpaint"] = gr.Dropdown(
                        [("No", ""), *[(a, a) for a in field_choices("outpaint")]],
                        value="",
                        label="Extend the canvas to this aspect ratio",
                        elem_id="edit-outpaint",
                    )
                    with gr.Row():
                        for side in SIDES:
                            c[f"outpaint_{side}"] = gr.Number(
                                0,
                                minimum=0,
                                maximum=MAX_EXTEND,
                                precision=0,
                                label=f"or pixels {side}",
                            )
                with gr.Accordion("Advanced", open=False):
                    c["negative_prompt"] = gr.Textbox(label="Negative prompt", lines=2)
                    with gr.Row(equal_height=True):
                        c["seed"] = gr.Number(
                            label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED
                        )
                        c["random_seed"] = gr.Checkbox(label="Random seed", value=True)
                    c["steps"] = gr.Slider(1, preset.max_steps, preset.steps, step=1, label="Steps")
                    c["guidance"] = slider("guidance", preset.guidance, 0.5, label="Guidance")
                    c["num_images"] = slider("num_images", step=1, label="Number of images")
                    c["strength"] = gr.Slider(
                        0.05, 1.0, 1.0, step=0.05, label="How much the painted area may change"
                    )
            with gr.Column(scale=6, min_width=340):
                results_panel(c, "edit-")
                c["details"] = gr.Markdown("", elem_classes=["details"], elem_id="edit-details")
        c["ids"] = gr.State([])
        c["last_seed"] = gr.State(None)
        c["source_id"] = gr.State(None)
        c["sent_id"] = gr.State(None)  # the last image sent here (Send to Edit)
        c["sent_file"] = gr.File(label="Picture sent to Edit", visible=False)  # for the browser
    ctx.edit = c
    _wire(ctx, c)
    wire_send(ctx, ctx.create)
    return c


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    c["user_key"] = ctx.key
    outputs = [
        c["results"],
        c["ids"],
        c["selected"],
        c["details"],
        c["download_png"],
        c["download_jpeg"],
        c["last_seed"],
    ]

    @guarded
    def edit(
        user_key: str | None,
        editor: dict | None,
        prompt: str,
        mask: str | None = None,
        references: list[str] | None = None,
        outpaint: str | None = "",
        outpaint_left: int = 0,
        outpaint_top: int = 0,
        outpaint_right: int = 0,
        outpaint_bottom: int = 0,
        negative_prompt: str | None = None,
        seed: int | None = 0,
        random_seed: bool = True,
        steps: int | None = None,
        guidance: float | None = None,
        num_images: int = 1,
        strength: float = 1.0,
        source_id: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress=gr.Progress(),
    ):
        """Edit an image with the parameters of POST /api/v1/edit; the editor's background is
        the source and its painted layer the mask."""
        wanted = edit_request(locals())
        user_id = ctx.uid(user_key, profile)
        uploads = [(editor or {}).get("background"), mask, *(references or [])]
        ctx.uploaded(user_id, ["upload"], [*uploads, *((editor or {}).get("layers") or [])])

        def work(report, show):
            return ctx.studio.edit(
                wanted, user_id=user_id, front_door="ui", progress=report, on_preview=show
            )

        yield (yield from stream_result(ctx, user_id, request, progress, work, RESULT_OUTPUTS))

    inputs = [c[name] for name in parameter_names(edit)]
    note_queued(ctx, c["edit_button"], c["queued"])
    event = c["edit_button"].click(
        edit,
        inputs=inputs,
        outputs=outputs,
        api_name="edit",
        scroll_to_output=True,
        show_progress_on=c["results"],
        trigger_mode="multiple",
        concurrency_id="gpu",
        concurrency_limit=ctx.settings.max_batch,
    )
    event.then(lambda: "", None, c["queued"], api_visibility="private", queue=False)

    def cancel(request: gr.Request):
        from .context import session_of

        if ctx.cancel(session_of(request)):
            gr.Info("Cancelling…")

    c["cancel_button"].click(cancel, None, None, cancels=[event], api_visibility="private")

    def kept_source(profile: gr.OAuthProfile | None, key_value, editor, sent_id):
        """The source id once a picture lands in the editor: the image sent here (Send to
        Edit uploads it, and the editor reports its upload more than once) when the pixels
        are that image's, else None: a picture of the user's own is edited as an upload."""
        background = (editor or {}).get("background")
        if not (sent_id and background):
            return None
        try:
            stored = ctx.studio.images.get(ctx.uid(key_value, profile), sent_id)["file_path"]
        except NotFoundError:
            return None
        return sent_id if same_pixels(background, stored) else None

    c["editor"].upload(
        kept_source,
        [ctx.key, c["editor"], c["sent_id"]],
        c["source_id"],
        api_visibility="private",
        queue=False,
    )
    wire_select(ctx, c)
    wire_send(ctx, c)


def wire_send(ctx: Ctx, panel: dict[str, Any]) -> None:
    """``panel``'s "Send to Edit" and "Use as reference" (its ``selected`` image) fill the
    Edit tab and switch to it."""
    e = ctx.edit

    @guarded
    def send(profile: gr.OAuthProfile | None, key_value, image_id):
        user_id = ctx.uid(key_value, profile)
        if not image_id:
            raise ValidationError("image: choose an image first.")
        row = ctx.studio.images.get(user_id, image_id)
        return ctx.served(user_id, [image_id], row["file_path"]), image_id, image_id, None

    panel["send_to_edit"].click(None, js=SHOW_EDIT_TAB, api_visibility="private").then(
        send,
        [ctx.key, panel["selected"]],
        [e["sent_file"], e["sent_id"], e["source_id"], e["mask"]],
        api_visibility="private",
    ).success(None, e["sent_file"], None, js=UPLOAD_INTO_EDITOR, api_visibility="private")

    @guarded
    def use_as_reference(profile: gr.OAuthProfile | None, key_value, image_id, current):
        user_id = ctx.uid(key_value, profile)
        if not image_id:
            raise ValidationError("image: choose an image first.")
        current = list(current or [])
        if len(current) >= MAX_EDIT_REFERENCES:
            raise ValidationError(f"references: at most {MAX_EDIT_REFERENCES}; remove one first.")
        row = ctx.studio.images.get(user_id, image_id)
        current.append(ctx.served(user_id, [image_id], row["file_path"]))
        return current

    panel["use_as_reference"].click(None, js=SHOW_EDIT_TAB, api_visibility="private").then(
        use_as_reference,
        [ctx.key, panel["selected"], e["references"]],
        e["references"],
        api_visibility="private",
    )
