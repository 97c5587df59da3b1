"""The Create tab: prompt, styles, size, advanced controls, Generate/Cancel, and the results.

The controls are made from the request model (``gempix.params``): ranges, choices and defaults
come from there, and each control is named as its field. The ``/generate`` endpoint takes them
as named parameters, the names of the HTTP API's body (plus the user key and Random seed), and
builds a ``GenerationRequest`` that the model checks. GPU work (generate, upscale) shares one
queue, concurrency id ``gpu``: ``GEMPIX_MAX_BATCH`` requests enter the studio at once, whose
GPU line runs one call at a time and lets same-shape generations share it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..errors import ValidationError
from ..params import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    GenerationRequest,
    field_choices,
    field_default,
    field_help,
    field_range,
)
from ..styles import MAX_STYLES, categories, load_presets
from . import format as fmt
from . import pnginfo
from .context import STAGES, Ctx, session_of
from .errors import Cancelled, guarded

RESOLUTION_LABELS = {
    "native": "Native (fastest)",
    "2k": "2K (2560 px long side)",
    "4k": "4K (3840 px long side)",
}
UPSCALER_LABELS = {
    "auto": "Auto",
    "lanczos": "Lanczos (fast)",
    "esrgan": "Real-ESRGAN",
    "detail": "ESRGAN + detail",
}
UPLOAD_TYPES = ["image"]
PREVIEW_QUALITY = 85  # live previews are written as JPEG: small, fast, and only a preview


def style_choices(category: str | None) -> list[tuple[str, str]]:
    return [
        (style.label, style.name)
        for style in load_presets().values()
        if category is None or style.category == category
    ]


def choices(name: str, labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(labels.get(value, value), value) for value in field_choices(name)]


def slider(name: str, value: Any = None, step: float = 0.05, **options: Any) -> gr.Slider:
    """A slider over the request model's range for ``name``, at its default unless given."""
    low, high = field_range(name)
    if value is None:
        value = field_default(name)
    return gr.Slider(low, high, value, step=step, **options)


def request_from_controls(values: dict[str, Any]) -> GenerationRequest:
    """The request the Create tab's controls describe (the model checks every rule). Empty
    controls mean "not given": no file, no character, and for the character strength, the
    saved character's own."""
    fields = {name: values[name] for name in GenerationRequest.model_fields if name in values}
    fields = {n: v for n, v in fields.items() if v not in (None, "", []) or n == "prompt"}
    fields.pop("seed", None)
    if not values.get("random_seed"):
        if values.get("seed") is None:
            raise ValidationError("seed: enter a seed, or tick Random seed.")
        fields["seed"] = values["seed"]
    for name in ("styles", "references"):
        if isinstance(fields.get(name), str):
            fields[name] = [fields[name]]
    return GenerationRequest(**fields)


_DONE = object()


def streamed(work: Callable[[], Any], previews: queue.SimpleQueue, outputs: int):
    """Run ``work()`` in a thread and yield page updates of the first output (the Results
    gallery) for every preview it puts in ``previews``, the other outputs left as they are;
    returns what ``work`` returned, or raises what it raised.

    The thread runs in a copy of this context, so ``gr.Progress`` and the request still reach
    the page from it; Cancel stops it through the progress callback, as before.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # handed to the handler, which translates it
            outcome["error"] = error
        finally:
            previews.put(_DONE)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    while (update := previews.get()) is not _DONE:
        yield (update, *(gr.skip() for _ in range(outputs - 1)))
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


RESULT_OUTPUTS = 7  # results, ids, selected, details, PNG, JPEG, last seed


def stream_result(
    ctx: Ctx,
    user_id: str,
    request: gr.Request | None,
    progress: Any,
    work: Callable[[Callable, Callable | None], Any],
    outputs: int,
):
    """Run ``work(report, show)`` (a studio call taking progress and previews) for the page:
    cancellable, with a progress bar and a live preview per step in the Results gallery; the
    previews are registered as copies of the images made. Yields the preview updates and
    returns the Results outputs (items, ids, selected id, details, PNG, JPEG, seed)."""
    session = session_of(request)
    flag = ctx.cancel_flag(session)
    folder: list[Any] = []  # this call's preview files, made on the first preview

    def report(done: int, total: int, stage: str) -> None:
        if flag.is_set():
            raise Cancelled
        progress((done, total), desc=STAGES.get(stage, stage))

    previews: queue.SimpleQueue = queue.SimpleQueue()

    def show(step: int, total: int, image: Any) -> None:
        folder[:] = folder or [ctx.download_dir()]
        path = folder[0] / f"preview-{step}.jpg"
        image.convert("RGB").save(path, quality=PREVIEW_QUALITY)
        ctx.studio.served.add(user_id, ["preview"], path)
        previews.put([(str(path), f"Preview: step {step} of {total}")])

    def call():
        return work(report, show if ctx.settings.previews else None)

    progress(0, desc="Waiting for the model")
    try:
        result = yield from streamed(call, previews, outputs)
    finally:
        ctx.done(session, flag)
    ids = [image.id for image in result.images]
    for path in folder[0].iterdir() if folder else ():
        ctx.studio.served.add(user_id, ids, path)  # deleting the images deletes these
    for warning in result.warnings:
        gr.Warning(warning)
    first = result.images[0]
    details, png, jpeg = selection(ctx, user_id, first.id)
    items = [
        (ctx.served(user_id, [image.id], image.path), fmt.caption(dataclasses.asdict(image)))
        for image in result.images
    ]
    return items, ids, first.id, details, png, jpeg, first.seed


def selection(ctx: Ctx, user_id: str, image_id: str | None) -> tuple[str, Any, Any]:
    """Details and the two download files of one of the user's images (or nothing chosen)."""
    if not image_id:
        return fmt.EMPTY_DETAILS, gr.update(value=None), gr.update(value=None)
    row = ctx.studio.images.get(user_id, image_id)
    jpeg = ctx.studio.images.download(user_id, image_id, "jpeg", ctx.download_dir())
    return fmt.details(row), ctx.served(user_id, [row["id"]], row["file_path"]), str(jpeg)


def result_items(ctx: Ctx, user_id: str, ids: list[str]) -> list[tuple[str, str]]:
    """Gallery items for the user's images ``ids`` that still exist."""
    items = []
    for image_id in ids:
        try:
            row = ctx.studio.images.get(user_id, image_id)
        except Exception:  # deleted meanwhile (here or in another tab): just not shown
            continue
        items.append((ctx.served(user_id, [image_id], row["file_path"]), fmt.caption(row)))
    return items


def results_panel(c: dict[str, Any], prefix: str = "") -> None:
    """The Results gallery (a whole batch, uncropped), the selected id, its downloads and
    "Send to Edit" / "Use as reference" (wired by ``ui/edit.py``), into ``c``."""
    c["results"] = gr.Gallery(
        label="Results",
        format="png",
        columns=2,
        height="auto",
        object_fit="contain",
        buttons=["download", "fullscreen"],
        elem_id=f"{prefix}results",
    )
    c["selected"] = gr.Textbox(
        label="Selected image", interactive=False, max_lines=1, elem_id=f"{prefix}selected"
    )
    with gr.Row():
        c["download_png"] = gr.DownloadButton("Download PNG", size="sm")
        c["download_jpeg"] = gr.DownloadButton("Download JPEG", size="sm")
        c["send_to_edit"] = gr.Button("Send to Edit", size="sm", elem_id=f"{prefix}send-to-edit")
        c["use_as_reference"] = gr.Button(
            "Use as reference", size="sm", elem_id=f"{prefix}use-as-reference"
        )


def build(ctx: Ctx) -> dict[str, Any]:
    preset = ctx.studio.model().preset
    groups = categories()
    prompt_chars = MAX_PROMPT_CHARS
    c: dict[str, Any] = {}
    with gr.Tab("Create", id="create"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                c["prompt"] = gr.Textbox(
                    label="Prompt",
                    lines=3,
                    max_lines=8,
                    max_length=prompt_chars,
                    placeholder="a lighthouse on a cliff at dawn, volumetric light",
                    elem_id="prompt",
                )
                with gr.Row():
                    c["generate_button"] = gr.Button(
                        "Generate", variant="primary", scale=3, elem_id="generate-button"
                    )
                    c["cancel_button"] = gr.Button("Cancel", variant="stop", scale=1)
                c["queued"] = gr.Markdown("", elem_id="create-queued")
                with gr.Accordion("Styles", open=True):
                    c["category"] = gr.Radio(
                        choices=groups, value=groups[0], label="Style category"
                    )
                    c["style_boxes"] = gr.CheckboxGroup(
                        choices=style_choices(groups[0]),
                        value=[],
                        label="Styles in this category",
                    )
                    c["styles"] = gr.Dropdown(
                        choices=style_choices(None),
                        value=[],
                        multiselect=True,
                        max_choices=MAX_STYLES,
                        label="Chosen styles",
                        info=f"Up to {MAX_STYLES}, applied in this order. Remove one with its ×.",
                    )
                with gr.Accordion("Style reference", open=False):
                    c["style_image"] = gr.File(
                        label="Style reference image", file_types=UPLOAD_TYPES
                    )
                    c["style_strength"] = slider(
                        "style_strength",
                        label="Style reference strength",
                        info=field_help("style_strength"),
                    )
                with gr.Accordion("Character", open=False, elem_id="character-panel"):
                    c["character"] = gr.Dropdown(
                        choices=[("No character", "")], value="", label="Character"
                    )
                    c["references"] = gr.File(
                        label="Or reference images for this generation only (1-4)",
                        file_types=UPLOAD_TYPES,
                        file_count="multiple",
                    )
                    low, high = field_range("character_strength")
                    c["character_strength"] = gr.Number(
                        None,
                        minimum=low,
                        maximum=high,
                        step=0.05,
                        label="Character strength",
                        placeholder="the character's own",
                        info=field_help("character_strength"),
                    )
                    c["character_face"] = gr.Checkbox(
                        label="The character is a face (plus-face weights)",
                        value=field_default("character_face"),
                    )
                with gr.Row():
                    c["resolution"] = gr.Dropdown(
                        choices("resolution", RESOLUTION_LABELS),
                        value=field_default("resolution"),
                        label="Resolution",
                    )
                    c["aspect"] = gr.Dropdown(
                        list(field_choices("aspect")), value="1:1", label="Aspect ratio"
                    )
                    c["upscaler"] = gr.Dropdown(
                        choices("upscaler", UPSCALER_LABELS),
                        value=field_default("upscaler"),
                        label="Upscaler",
                    )
                with gr.Accordion("Advanced", open=False):
                    c["negative_prompt"] = gr.Textbox(
                        label="Negative prompt",
                        lines=2,
                        max_length=prompt_chars,
                        placeholder="blurry, low quality",
                    )
                    with gr.Row(equal_height=True):
                        c["seed"] = gr.Number(
                            label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED
                        )
                        c["random_seed"] = gr.Checkbox(label="Random seed", value=True)
                        c["reuse_seed"] = gr.Button("Reuse last seed", size="sm")
                    c["steps"] = gr.Slider(1, preset.max_steps, preset.steps, step=1, label="Steps")
                    c["guidance"] = slider("guidance", preset.guidance, 0.5, label="Guidance")
                    c["num_images"] = slider("num_images", step=1, label="Number of images")
                    c["init_image"] = gr.File(
                        label="Start from an image (image-to-image)",
                        file_types=UPLOAD_TYPES,
                        elem_id="init-image",
                    )
                    c["strength"] = slider(
                        "strength", label="Image-to-image strength", info=field_help("strength")
                    )
                pnginfo.build(c, UPLOAD_TYPES)
            with gr.Column(scale=6, min_width=340):
                results_panel(c)
                with gr.Row():
                    c["reuse"] = gr.Button("Reuse parameters", size="sm")
                    c["upscale"] = gr.Button("Upscale to 4K", size="sm")
                    c["delete"] = gr.Button("Delete image", size="sm", variant="stop")
                c["details"] = gr.Markdown(
                    fmt.EMPTY_DETAILS,
                    label="Image details",
                    elem_id="details",
                    elem_classes=["details"],
                )
        c["ids"] = gr.State([])
        c["last_seed"] = gr.State(None)
    _wire(ctx, c)
    pnginfo.wire(ctx, c, preset.max_steps)
    ctx.create = c
    ctx.refresh_characters.append(c["character"])
    return c


REUSED = [
    "prompt",
    "styles",
    "negative_prompt",
    "seed",
    "random_seed",
    "steps",
    "guidance",
    "aspect",
    "resolution",
    "upscaler",
    "num_images",
]


def reuse_outputs(c: dict[str, Any]) -> list[Any]:
    return [c[name] for name in REUSED]


def reuse_values(ctx: Ctx, user_id: str, image_id: str) -> list[Any]:
    """Control values that make the image again (its prompt already carries its styles)."""
    if not image_id:
        raise ValidationError("image: choose an image first.")
    request = ctx.studio.images.reuse(user_id, image_id)
    values = {**request.fields(), "styles": [], "random_seed": False, "num_images": 1}
    values["aspect"] = request.aspect or gr.update()
    return [values[name] for name in REUSED]


def parameter_names(fn: Callable[..., Any]) -> list[str]:
    """The names of ``fn``'s parameters that the page fills (Gradio fills the others)."""
    return [p.name for p in gr.utils.get_positional_input_parameters(fn)]


def wire_select(ctx: Ctx, c: dict[str, Any]) -> None:
    """Choosing an image in a Results gallery shows its details and downloads."""

    @guarded
    def select(evt: gr.SelectData, profile: gr.OAuthProfile | None, key_value, ids):
        user_id = ctx.uid(key_value, profile)
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids or []):
            return "", *selection(ctx, user_id, None)
        return ids[index], *selection(ctx, user_id, ids[index])

    c["results"].select(
        select,
        [ctx.key, c["ids"]],
        [c["selected"], c["details"], c["download_png"], c["download_jpeg"]],
        api_visibility="private",
    )


def note_queued(ctx: Ctx, button: Any, queued: Any) -> None:
    """A click while this browser's call runs is queued too, not dropped (the button's
    ``trigger_mode="multiple"``); it starts when the GPU queue has a free slot
    (``GEMPIX_MAX_BATCH`` calls at once), beside or after the running one. Say so at once,
    next to the button."""

    def note(request: gr.Request):
        if not ctx.running(session_of(request)):
            return ""
        gr.Info("Queued: it starts as soon as the GPU queue has a free slot. Cancel drops it.")
        return "⏳ Queued as well (Cancel drops it)."

    button.click(note, None, queued, queue=False, api_visibility="private")


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    key = ctx.key
    c["user_key"] = key
    gpu = {"concurrency_id": "gpu", "concurrency_limit": ctx.settings.max_batch}
    result_outputs = [
        c["results"],
        c["ids"],
        c["selected"],
        c["details"],
        c["download_png"],
        c["download_jpeg"],
        c["last_seed"],
    ]

    @guarded
    def generate(
        user_key: str | None,
        prompt: str,
        styles: list[str] | None = None,
        resolution: str = field_default("resolution"),
        aspect: str | None = "1:1",
        upscaler: str = field_default("upscaler"),
        negative_prompt: str | None = None,
        seed: int | None = 0,
        random_seed: bool = True,
        steps: int | None = None,
        guidance: float | None = None,
        num_images: int = field_default("num_images"),
        init_image: str | None = None,
        strength: float = field_default("strength"),
        style_image: str | None = None,
        style_strength: float = field_default("style_strength"),
        character: str | None = None,
        references: list[str] | None = None,
        character_strength: float | None = None,
        character_face: bool = False,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress=gr.Progress(),
    ):
        """Generate images with the parameters of POST /api/v1/generate; files are uploads.
        ``character_strength`` left empty uses the saved character's own strength."""
        generation = request_from_controls(locals())
        user_id = ctx.uid(user_key, profile)
        ctx.uploaded(user_id, ["upload"], [init_image, style_image, *(references or [])])

        def work(report, show):
            return ctx.studio.generate(
                generation, user_id=user_id, front_door="ui", progress=report, on_preview=show
            )

        yield (yield from stream_result(ctx, user_id, request, progress, work, RESULT_OUTPUTS))

    inputs = [c[name] for name in parameter_names(generate)]
    note_queued(ctx, c["generate_button"], c["queued"])
    generate_event = c["generate_button"].click(
        generate,
        inputs=inputs,
        outputs=result_outputs,
        api_name="generate",
        scroll_to_output=True,
        show_progress_on=c["results"],
        trigger_mode="multiple",
        **gpu,
    )
    generate_event.then(lambda: "", None, c["queued"], api_visibility="private", queue=False)
    submit_event = c["prompt"].submit(
        generate,
        inputs=inputs,
        outputs=result_outputs,
        api_visibility="private",
        show_progress_on=c["results"],
        **gpu,
    )

    def cancel(request: gr.Request):
        if ctx.cancel(session_of(request)):
            gr.Info("Cancelling…")

    c["cancel_button"].click(
        cancel,
        inputs=None,
        outputs=None,
        cancels=[generate_event, submit_event],
        api_visibility="private",
    )

    def pick_category(category: str, chosen: list[str] | None):
        names = {name for _, name in style_choices(category)}
        return gr.update(
            choices=style_choices(category), value=[n for n in chosen or [] if n in names]
        )

    c["category"].change(
        pick_category,
        [c["category"], c["styles"]],
        c["style_boxes"],
        api_visibility="private",
        queue=False,
    )

    def tick_styles(category: str, ticked: list[str] | None, chosen: list[str] | None):
        in_category = {name for _, name in style_choices(category)}
        kept = [name for name in chosen or [] if name not in in_category]
        merged = kept + [name for name in (chosen or []) if name in (ticked or [])]
        merged += [name for name in ticked or [] if name not in merged]
        if len(merged) > MAX_STYLES:
            gr.Warning(f"At most {MAX_STYLES} styles can be combined.")
            merged = merged[:MAX_STYLES]
        return merged

    c["style_boxes"].input(
        tick_styles,
        [c["category"], c["style_boxes"], c["styles"]],
        c["styles"],
        api_visibility="private",
        queue=False,
    )
    c["styles"].change(
        pick_category,
        [c["category"], c["styles"]],
        c["style_boxes"],
        api_visibility="private",
        queue=False,
    )

    def reuse_seed(last: int | None):
        if last is None:
            raise gr.Error("Generate an image first; its seed can then be reused.")
        return last, False

    c["reuse_seed"].click(
        reuse_seed, c["last_seed"], [c["seed"], c["random_seed"]], api_visibility="private"
    )

    wire_select(ctx, c)

    @guarded
    def reuse(profile: gr.OAuthProfile | None, key_value, image_id):
        values = reuse_values(ctx, ctx.uid(key_value, profile), image_id)
        gr.Info("Parameters loaded. The prompt already includes its styles.")
        return *values, gr.Tabs(selected="create")

    c["reuse"].click(
        reuse,
        [key, c["selected"]],
        [*reuse_outputs(c), ctx.tabs],
        api_name="reuse_parameters",
    )

    @guarded
    def upscale(
        user_key: str | None,
        image_id: str,
        upscaler: str = field_default("upscaler"),
        ids: list[str] | None = None,
        profile: gr.OAuthProfile | None = None,
        progress=gr.Progress(),
    ):
        """Upscale one of your images to 4K (a new image, linked to its source)."""
        user_id = ctx.uid(user_key, profile)
        if not image_id:
            raise ValidationError("image: choose an image first.")
        progress(0, desc="Upscaling")
        result = ctx.studio.upscale(
            image_id,
            resolution="4k",
            upscaler=upscaler or "auto",
            user_id=user_id,
            front_door="ui",
            progress=lambda done, total, stage: progress(
                (done, total), desc=STAGES.get(stage, stage)
            ),
        )
        for warning in result.warnings:
            gr.Warning(warning)
        image = result.images[0]
        ids = [image.id, *(ids or [])]
        details, png, jpeg = selection(ctx, user_id, image.id)
        return result_items(ctx, user_id, ids), ids, image.id, details, png, jpeg

    c["upscale"].click(
        upscale,
        [key, c["selected"], c["upscaler"], c["ids"]],
        result_outputs[:-1],
        api_name="upscale",
        show_progress_on=c["results"],
        **gpu,
    )

    @guarded
    def delete(profile: gr.OAuthProfile | None, key_value, image_id, ids):
        user_id = ctx.uid(key_value, profile)
        ctx.studio.images.delete(user_id, image_id)
        ids = [i for i in ids or [] if i != image_id]
        gr.Info("Image deleted.")
        return result_items(ctx, user_id, ids), ids, "", *selection(ctx, user_id, None)

    c["delete"].click(
        delete,
        [key, c["selected"], c["ids"]],
        result_outputs[:-1],
        api_name="delete_image",
    )
