"""The Characters tab: a user's library of characters (a name plus 1-4 reference images)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import ValidationError
from .context import Ctx
from .create import UPLOAD_TYPES
from .errors import guarded

RIGHTS_LABEL = "I have the rights to use these images (they show me, or I have permission)."


def _table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            row["name"],
            len(row.get("reference_paths") or []),
            row["created_at"].strftime("%Y-%m-%d") if row.get("created_at") else "",
            row["rights_confirmed_at"].strftime("%Y-%m-%d %H:%M UTC")
            if row.get("rights_confirmed_at")
            else "not confirmed",
        ]
        for row in rows
    ]


def library(ctx: Ctx, user_id: str, chosen: str | None = None) -> tuple[Any, ...]:
    """The table, the picker (keeping ``chosen`` when it still exists), its references,
    and, when characters can be used in Create, that tab's character picker."""
    rows = ctx.studio.characters.list(user_id)
    choices = [(row["name"], row["id"]) for row in rows]
    ids = [row["id"] for row in rows]
    value = chosen if chosen in ids else (ids[0] if ids else None)
    picked = next((row for row in rows if row["id"] == value), None)
    refs = [
        ctx.served(user_id, [picked["id"]], path)
        for path in (picked or {}).get("reference_paths") or []
    ]
    out: list[Any] = [
        _table(rows),
        gr.update(choices=choices, value=value),
        refs,
        (picked or {}).get("name", ""),
    ]
    out.append(gr.update(choices=[("No character", ""), *choices]))
    return tuple(out)


def _paths(files: Any) -> list[str]:
    if not files:
        return []
    files = files if isinstance(files, list) else [files]
    return [getattr(item, "name", item) for item in files]


def build(ctx: Ctx) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Characters", id="characters") as c["tab"]:
        gr.Markdown(
            "A character is a name plus 1–4 reference images of the same person, creature or "
            "mascot. References are checked, stored with your images, and deleted with them."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### New character")
                c["name"] = gr.Textbox(label="Character name", max_length=64, max_lines=1)
                c["references"] = gr.File(
                    label="Reference images (1 to 4)",
                    file_count="multiple",
                    file_types=UPLOAD_TYPES,
                    elem_id="references",
                )
                c["rights"] = gr.Checkbox(label=RIGHTS_LABEL, value=False)
                c["create"] = gr.Button("Create character", variant="primary")
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Your characters")
                c["table"] = gr.Dataframe(
                    headers=["name", "references", "created", "rights confirmed"],
                    value=[],
                    label="Character library",
                    interactive=False,
                    wrap=True,
                )
                c["picked"] = gr.Dropdown(choices=[], label="Character to edit")
                c["gallery"] = gr.Gallery(
                    label="References", columns=4, height=180, format="png", object_fit="cover"
                )
                with gr.Row(equal_height=False):
                    c["new_name"] = gr.Textbox(label="New name", max_length=64, max_lines=1)
                    c["rename"] = gr.Button("Rename", size="sm", scale=0, min_width=100)
                with gr.Accordion("Replace references", open=False):
                    c["new_references"] = gr.File(
                        label="New reference images (1 to 4)",
                        file_count="multiple",
                        file_types=UPLOAD_TYPES,
                    )
                    c["new_rights"] = gr.Checkbox(label=RIGHTS_LABEL, value=False)
                    c["replace"] = gr.Button("Replace references", size="sm")
                c["delete"] = gr.Button("Delete character", variant="stop", size="sm")
    _wire(ctx, c)
    return c


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    key = ctx.key
    outputs = [c["table"], c["picked"], c["gallery"], c["new_name"], *ctx.refresh_characters]
    c["outputs"] = outputs

    @guarded
    def show(profile: gr.OAuthProfile | None, key_value, chosen=None):
        return library(ctx, ctx.uid(key_value, profile), chosen)

    c["show"] = show
    c["tab"].select(show, [key, c["picked"]], outputs, api_visibility="private")
    c["picked"].input(show, [key, c["picked"]], outputs, api_visibility="private")

    @guarded
    def create(profile: gr.OAuthProfile | None, key_value, name, files, rights):
        user_id = ctx.uid(key_value, profile)
        ctx.uploaded(user_id, ["upload"], _paths(files))
        character_id = ctx.studio.characters.create(
            user_id, name or "", _paths(files), rights is True
        )["id"]
        ctx.uploaded(user_id, [character_id], _paths(files))
        gr.Info(f"Character “{(name or '').strip()}” created.")
        return *library(ctx, user_id, character_id), "", None, False

    c["create"].click(
        create,
        [key, c["name"], c["references"], c["rights"]],
        [*outputs, c["name"], c["references"], c["rights"]],
        api_name="create_character",
        show_progress_on=c["references"],  # an error badges this field, not every output
    )

    def _chosen(character_id: Any) -> str:
        if not isinstance(character_id, str) or not character_id:
            raise ValidationError("character: choose a character first.")
        return character_id

    @guarded
    def rename(profile: gr.OAuthProfile | None, key_value, character_id, name):
        user_id = ctx.uid(key_value, profile)
        ctx.studio.characters.update(user_id, _chosen(character_id), name=name)
        gr.Info("Renamed.")
        return library(ctx, user_id, character_id)

    c["rename"].click(
        rename,
        [key, c["picked"], c["new_name"]],
        outputs,
        api_name="rename_character",
        show_progress_on=c["new_name"],
    )

    @guarded
    def replace(profile: gr.OAuthProfile | None, key_value, character_id, files, rights):
        user_id = ctx.uid(key_value, profile)
        ctx.studio.characters.update(
            user_id,
            _chosen(character_id),
            references=_paths(files),
            rights_confirmed=rights is True,
        )
        ctx.uploaded(user_id, [character_id], _paths(files))
        gr.Info("References replaced.")
        return *library(ctx, user_id, character_id), None, False

    c["replace"].click(
        replace,
        [key, c["picked"], c["new_references"], c["new_rights"]],
        [*outputs, c["new_references"], c["new_rights"]],
        api_name="replace_references",
        show_progress_on=c["new_references"],
    )

    @guarded
    def delete(profile: gr.OAuthProfile | None, key_value, character_id):
        user_id = ctx.uid(key_value, profile)
        ctx.studio.characters.delete(user_id, _chosen(character_id))
        gr.Info("Character deleted.")
        return library(ctx, user_id)

    c["delete"].click(
        delete,
        [key, c["picked"]],
        outputs,
        api_name="delete_character",
        show_progress_on=c["table"],
    )
