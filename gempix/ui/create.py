"""The Create tab: prompt, styles, size, advanced controls, Generate/Cancel, and the results.

Handlers translate controls to a ``GenerationRequest`` and results back to the page; the
service validates everything. GPU work (generate, upscale) shares one queue, concurrency id
``gpu``: ``GEMPIX_MAX_BATCH`` requests enter the studio at once, whose GPU line runs one call
at a time and lets same-shape generations share it (``engine.coalesce``).
"""

from __future__ import annotations

import contextvars
import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

import gradio as gr

from .. import gallery
from ..engine.adapters import MAX_STRENGTH
from ..engine.request import (
    DEFAULT_CHARACTER_STRENGTH,
    DEFAULT_STYLE_STRENGTH,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    UPSCALERS,
    GenerationRequest,
)
from ..engine.sizes import ASPECTS
from ..errors import ValidationError
from ..styles import MAX_STYLES, categories, load_presets
from . import format as fmt
from .context import STAGES, Ctx, session_of
from .errors import Cancelled, guarded

RESOLUTION_CHOICES = [
    ("Native (fastest)", "native"),
    ("2K (2560 px long side)", "2k"),
    ("4K (3840 px long side)", "4k"),
]
UPSCALER_LABELS = {
    "auto": "Auto",
    "lanczos": "Lanczos (fast)",
    "esrgan": "Real-ESRGAN",
    "detail": "ESRGAN + detail",
}
UPLOAD_TYPES = ["image"]

# The controls of the Create tab in the order the generate endpoint takes them.
GENERATE_INPUTS = [
    "prompt",
    "styles",
    "resolution",
    "aspect",
    "upscaler",
    "negative",
    "seed",
    "random_seed",
    "steps",
    "guidance",
    "num_images",
    "init_image",
    "strength",
    "style_image",
    "style_strength",
    "character",
    "references",
    "character_strength",
    "character_face",
]


def style_choices(category: str | None) -> list[tuple[str, str]]:
    return [
        (style.label, style.name)
        for style in load_presets().values()
        if category is None or style.category == category
    ]


def _whole(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected a whole number, got {value!r}.")
    return value


def request_from_controls(values: dict[str, Any]) -> GenerationRequest:
    """The request the Create tab's controls describe (validation is the service's job)."""
    seed = None
    if not values.get("random_seed"):
        if values.get("seed") is None:
            raise ValidationError("seed: enter a seed, or tick Random seed.")
        seed = _whole(values["seed"], "seed")
    styles = values.get("styles") or []
    if isinstance(styles, str):
        styles = [styles]
    references = values.get("references") or []
    return GenerationRequest(
        prompt=values.get("prompt") or "",
        negative_prompt=values.get("negative") or "",
        seed=seed,
        steps=_whole(values.get("steps"), "steps") if values.get("steps") is not None else None,
        guidance=float(values["guidance"]) if values.get("guidance") is not None else None,
        aspect=values.get("aspect") or "1:1",
        resolution=values.get("resolution") or "native",
        num_images=_whole(values.get("num_images") or 1, "num_images"),
        init_image=values.get("init_image") or None,
        strength=float(values.get("strength") or 0.6),
        upscaler=values.get("upscaler") or "auto",
        styles=tuple(styles),
        style_image=values.get("style_image") or None,
        style_strength=float(values.get("style_strength") or 0.0),
        character=values.get("character") or None,
        references=tuple(references if isinstance(references, list) else [references]),
        character_strength=float(values.get("character_strength") or 0.0),
        character_face=bool(values.get("character_face")),
    )


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


def selection(ctx: Ctx, user_id: str, image_id: str | None) -> tuple[str, Any, Any]:
    """Details and the two download files of one of the user's images (or nothing chosen)."""
    if not image_id:
        return fmt.EMPTY_DETAILS, gr.update(value=None), gr.update(value=None)
    row = gallery.get_image(ctx.studio, user_id, image_id)
    jpeg = gallery.download(ctx.studio, user_id, image_id, "jpeg", ctx.download_dir())
    return fmt.details(row), ctx.served(row["file_path"]), str(jpeg)


def result_items(ctx: Ctx, user_id: str, ids: list[str]) -> list[tuple[str, str]]:
    """Gallery items for the user's images ``ids`` that still exist."""
    items = []
    for image_id in ids:
        try:
            row = gallery.get_image(ctx.studio, user_id, image_id)
        except Exception:  # deleted meanwhile (here or in another tab): just not shown
            continue
        items.append((ctx.served(row["file_path"]), fmt.caption(row)))
    return items


def build(ctx: Ctx) -> dict[str, Any]:
    loaded = ctx.studio.model()
    preset = loaded.preset
    groups = categories()
    c: dict[str, Any] = {}
    with gr.Tab("Create", id="create"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                c["prompt"] = gr.Textbox(
                    label="Prompt",
                    lines=3,
                    max_lines=8,
                    max_length=MAX_PROMPT_CHARS,
                    placeholder="a lighthouse on a cliff at dawn, volumetric light",
                    elem_id="prompt",
                )
                with gr.Row():
                    c["generate_button"] = gr.Button("Generate", variant="primary", scale=3)
                    c["cancel_button"] = gr.Button("Cancel", variant="stop", scale=1)
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
                    c["style_strength"] = gr.Slider(
                        0,
                        MAX_STRENGTH,
                        DEFAULT_STYLE_STRENGTH,
                        step=0.05,
                        label="Style reference strength",
                        info="Its look, not its content. 0 switches it off.",
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
                    c["character_strength"] = gr.Slider(
                        0,
                        MAX_STRENGTH,
                        DEFAULT_CHARACTER_STRENGTH,
                        step=0.05,
                        label="Character strength",
                        info="0 switches it off. Save a character in the Characters tab.",
                    )
                    c["character_face"] = gr.Checkbox(
                        label="The character is a face (plus-face weights)", value=False
                    )
                with gr.Row():
                    c["resolution"] = gr.Dropdown(
                        RESOLUTION_CHOICES, value="native", label="Resolution"
                    )
                    c["aspect"] = gr.Dropdown(list(ASPECTS), value="1:1", label="Aspect ratio")
                    c["upscaler"] = gr.Dropdown(
                        [(UPSCALER_LABELS.get(name, name), name) for name in UPSCALERS],
                        value="auto",
                        label="Upscaler",
                    )
                with gr.Accordion("Advanced", open=False):
                    c["negative"] = gr.Textbox(
                        label="Negative prompt",
                        lines=2,
                        max_length=MAX_PROMPT_CHARS,
                        placeholder="blurry, low quality",
                    )
                    with gr.Row(equal_height=True):
                        c["seed"] = gr.Number(
                            label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED
                        )
                        c["random_seed"] = gr.Checkbox(label="Random seed", value=True)
                        c["reuse_seed"] = gr.Button("Reuse last seed", size="sm")
                    c["steps"] = gr.Slider(1, preset.max_steps, preset.steps, step=1, label="Steps")
                    c["guidance"] = gr.Slider(
                        0, MAX_GUIDANCE, preset.guidance, step=0.5, label="Guidance"
                    )
                    c["num_images"] = gr.Slider(1, MAX_IMAGES, 1, step=1, label="Number of images")
                    c["init_image"] = gr.File(
                        label="Start from an image (image-to-image)",
                        file_types=UPLOAD_TYPES,
                        elem_id="init-image",
                    )
                    c["strength"] = gr.Slider(
                        0.05, 1, 0.6, step=0.05, label="Image-to-image strength"
                    )
            with gr.Column(scale=6, min_width=340):
                c["results"] = gr.Gallery(
                    label="Results",
                    format="png",
                    columns=2,
                    height=460,
                    object_fit="contain",
                    buttons=["download", "fullscreen"],
                    elem_id="results",
                )
                c["selected"] = gr.Textbox(
                    label="Selected image", interactive=False, max_lines=1, elem_id="selected"
                )
                with gr.Row():
                    c["download_png"] = gr.DownloadButton("Download PNG", size="sm")
                    c["download_jpeg"] = gr.DownloadButton("Download JPEG", size="sm")
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
    ctx.create = c
    ctx.refresh_characters.append(c["character"])
    return c


def reuse_outputs(c: dict[str, Any]) -> list[Any]:
    names = ["prompt", "styles", "negative", "seed", "random_seed", "steps", "guidance"]
    names += ["aspect", "resolution", "upscaler", "num_images"]
    return [c[name] for name in names]


def reuse_values(ctx: Ctx, user_id: str, image_id: str) -> list[Any]:
    """Control values that make the image again (its prompt already carries its styles)."""
    if not image_id:
        raise ValidationError("image: choose an image first.")
    request = gallery.reuse_request(ctx.studio, user_id, image_id)
    return [
        request.prompt,
        [],
        request.negative_prompt,
        request.seed,
        False,
        request.steps,
        request.guidance,
        request.aspect or gr.update(),
        request.resolution or "native",
        request.upscaler or "auto",
        1,
    ]


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    key = ctx.key
    gpu = {"concurrency_id": "gpu", "concurrency_limit": ctx.settings.max_batch}
    inputs = [key] + [c[name] for name in GENERATE_INPUTS]
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
        request: gr.Request, profile: gr.OAuthProfile | None, progress=gr.Progress(), *values
    ):
        user_id = ctx.uid(values[0], profile)
        controls = dict(zip(GENERATE_INPUTS, values[1:], strict=True))
        generation = request_from_controls(controls)
        session = session_of(request)
        flag = ctx.cancel_flag(session)

        def report(done: int, total: int, stage: str) -> None:
            if flag.is_set():
                raise Cancelled
            progress((done, total), desc=STAGES.get(stage, stage))

        previews: queue.SimpleQueue = queue.SimpleQueue()

        def show(step: int, total: int, image: Any) -> None:
            previews.put([(image, f"Preview: step {step} of {total}")])

        def work():
            return ctx.studio.generate(
                generation,
                user_id=user_id,
                front_door="ui",
                progress=report,
                on_preview=show if ctx.settings.previews else None,
            )

        progress(0, desc="Waiting for the model")
        try:
            result = yield from streamed(work, previews, len(result_outputs))
        finally:
            ctx.done(session, flag)
        for warning in result.warnings:
            gr.Warning(warning)
        ids = [image.id for image in result.images]
        first = result.images[0]
        details, png, jpeg = selection(ctx, user_id, first.id)
        items = [
            (ctx.served(image.path), fmt.caption(dataclasses.asdict(image)))
            for image in result.images
        ]
        yield items, ids, first.id, details, png, jpeg, first.seed

    generate_event = c["generate_button"].click(
        generate,
        inputs=inputs,
        outputs=result_outputs,
        api_name="generate",
        scroll_to_output=True,
        show_progress_on=c["results"],
        **gpu,
    )
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

    @guarded
    def select(evt: gr.SelectData, profile: gr.OAuthProfile | None, key_value, ids):
        user_id = ctx.uid(key_value, profile)
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not 0 <= index < len(ids or []):
            return "", *selection(ctx, user_id, None)
        return ids[index], *selection(ctx, user_id, ids[index])

    c["results"].select(
        select,
        [key, c["ids"]],
        [c["selected"], c["details"], c["download_png"], c["download_jpeg"]],
        api_visibility="private",
    )

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
    def upscale(profile: gr.OAuthProfile | None, progress=gr.Progress(), *values):
        key_value, image_id, upscaler, ids = values
        user_id = ctx.uid(key_value, profile)
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
        gallery.delete_image(ctx.studio, user_id, image_id, cache_dirs=[ctx.cache_dir])
        ids = [i for i in ids or [] if i != image_id]
        gr.Info("Image deleted.")
        return result_items(ctx, user_id, ids), ids, "", *selection(ctx, user_id, None)

    c["delete"].click(
        delete,
        [key, c["selected"], c["ids"]],
        result_outputs[:-1],
        api_name="delete_image",
    )
