"""The Privacy tab, the age confirmation and the policy notice: privacy as controls.

Each control calls one method of ``studio.privacy``; this module only translates. The
user key is shown masked with a copy button and can be replaced by pasting a key from another
device. Erasure needs the word DELETE typed, then shows the erasure report and gives the
browser a fresh key (the erased account is gone; a new visit is a new user).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import NotFoundError, ValidationError
from ..privacy.identity import new_user_key
from ..privacy.policy import load_policy, notice_text
from . import format as fmt
from .context import Ctx
from .errors import guarded

CONFIRM_WORD = "DELETE"


def age_text(ctx: Ctx) -> str:
    policy = load_policy()
    return (
        f"**Welcome to GemPix.** Before your first image, please confirm that you are at least "
        f"**{ctx.settings.min_age} years old**. Your images and prompts stay on this server, are "
        f"never used for training unless you opt in, and you can export or delete them at any "
        f"time. Read the privacy policy (version {policy.version}, last updated "
        f"{policy.last_updated.isoformat()}) in the **Privacy** tab."
    )


def user_flags(ctx: Ctx, user_id: str) -> dict[str, Any]:
    """Where the user stands, for the top of the page and the Privacy tab."""
    user = ctx.studio.privacy.user(user_id)
    if user is None:
        return {"exists": False, "confirmed": False, "notice": False}
    return {
        "exists": True,
        "confirmed": user["age_confirmed_at"] is not None,
        "notice": user["age_confirmed_at"] is not None and ctx.studio.privacy.needs_notice(user_id),
    }


def _require_user(ctx: Ctx, user_id: str) -> None:
    if ctx.studio.privacy.user(user_id) is None:
        raise ValidationError(
            "Please confirm your age at the top of the page first; until then nothing is "
            "stored about you."
        )


def choices_view(ctx: Ctx, user_id: str) -> tuple[Any, ...]:
    """The three toggles and a line saying where they stand."""
    if ctx.studio.privacy.user(user_id) is None:
        return False, False, False, "Nothing is stored about you yet."
    states = ctx.studio.privacy.consent(user_id)
    training = states["training"]
    analytics = states["analytics"]
    restricted = ctx.studio.privacy.is_restricted(user_id)
    lines = [
        "Training: **"
        + ("opted in" if training.granted else "not allowed")
        + "**"
        + (f" (since {fmt.when(training.since)})" if training.since else " (default)"),
        "Anonymous statistics: **" + ("counted" if analytics.granted else "objected") + "**",
        "Processing: **" + ("restricted" if restricted else "normal") + "**",
    ]
    return training.granted, not analytics.granted, restricted, " · ".join(lines)


def build_gate(ctx: Ctx) -> dict[str, Any]:
    """The age confirmation and the policy notice, shown above the tabs when needed."""
    c: dict[str, Any] = {}
    with gr.Group(visible=False, elem_id="age-gate") as c["age_group"]:
        c["age_text"] = gr.Markdown(age_text(ctx))
        with gr.Row(equal_height=True):
            c["age_check"] = gr.Checkbox(
                label=f"I am at least {ctx.settings.min_age} years old", value=False, scale=3
            )
            c["age_button"] = gr.Button("Confirm and start", variant="primary", scale=1)
    with gr.Group(visible=False, elem_id="policy-notice") as c["notice_group"]:
        c["notice_text"] = gr.Markdown(notice_text())
        with gr.Row():
            c["notice_read"] = gr.Button("Read it in the Privacy tab", size="sm")
            c["notice_ack"] = gr.Button("I have read it", size="sm", variant="primary")
    return c


def build(ctx: Ctx, on_space: bool) -> dict[str, Any]:
    policy = load_policy()
    c: dict[str, Any] = {}
    with gr.Tab("Privacy", id="privacy") as c["tab"]:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                gr.Markdown(f"## Privacy policy\n**{policy.heading}**", elem_id="policy-heading")
                gr.Markdown(policy.text, max_height=560, elem_id="policy-text")
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Your user key")
                c["signed_in"] = gr.Markdown("", visible=False)
                c["key_box"] = gr.Textbox(
                    label="Your user key",
                    type="password",
                    interactive=False,
                    buttons=["copy"],
                    info="It is you: anyone who has it can act as you. We keep only a hash of it.",
                    elem_id="user-key",
                )
                c["show_key"] = gr.Checkbox(label="Show my key", value=False)
                with gr.Accordion("Restore on another device", open=False):
                    c["restore_box"] = gr.Textbox(
                        label="Paste a user key", type="password", max_lines=1
                    )
                    c["restore"] = gr.Button("Use this key", size="sm")
                gr.Markdown("### Your choices")
                c["training"] = gr.Checkbox(
                    label="Allow my prompts and images to be used to train image models",
                    value=False,
                    info="Off unless you turn it on; turning it off again takes effect at once.",
                )
                c["objection"] = gr.Checkbox(
                    label="Leave me out of anonymous usage statistics", value=False
                )
                c["restricted"] = gr.Checkbox(
                    label="Restrict processing: keep my data, use it only to show it to me",
                    value=False,
                )
                c["choices_status"] = gr.Markdown("", label="Your choices")
                gr.Markdown("### Your data")
                c["export"] = gr.Button("Export all my data (ZIP)")
                c["export_file"] = gr.File(
                    label="Your export", interactive=False, visible=False, elem_id="export-file"
                )
                with gr.Accordion("Delete everything", open=False):
                    gr.Markdown(
                        "Deletes your images, characters, API keys, consent records and "
                        "account from this server, including every copy it served you, and "
                        "checks that they are gone. This cannot be undone."
                    )
                    c["erase_confirm"] = gr.Textbox(
                        label=f"Type {CONFIRM_WORD} to confirm", max_lines=1
                    )
                    c["erase"] = gr.Button("Delete everything", variant="stop")
                    c["erase_report"] = gr.Markdown(
                        "", label="Erasure report", elem_id="erase-report"
                    )
    return c


def wire(ctx: Ctx, c: dict[str, Any], gate: dict[str, Any], after_identity_change) -> None:
    """Events of the Privacy tab and the gate; ``after_identity_change(event)`` chains the
    refresh of every tab after the key changed (restore, erasure)."""
    key = ctx.key
    choice_outputs = [c["training"], c["objection"], c["restricted"], c["choices_status"]]

    @guarded
    def show(profile: gr.OAuthProfile | None, key_value):
        user_id = ctx.uid(key_value, profile)
        username = ctx.identity.signed_in(profile)
        signed = gr.update(
            visible=username is not None,
            value=f"Signed in as **{username}**: your data follows your Hugging Face account."
            if username
            else "",
        )
        return signed, key_value or "", *choices_view(ctx, user_id)

    c["show"] = show
    c["outputs"] = [c["signed_in"], c["key_box"], *choice_outputs]
    c["tab"].select(show, [key], c["outputs"], api_visibility="private")

    c["show_key"].input(
        lambda shown: gr.update(type="text" if shown else "password"),
        c["show_key"],
        c["key_box"],
        api_visibility="private",
        queue=False,
    )

    @guarded
    def restore(pasted):
        try:
            ctx.studio.privacy.open_user(pasted)
        except NotFoundError as error:
            raise ValidationError(error.message) from None
        gr.Info("Welcome back: this browser now uses the key you pasted.")
        return pasted.strip(), "", gr.update(value=None, visible=False)

    after_identity_change(
        c["restore"].click(
            restore,
            [c["restore_box"]],
            [key, c["restore_box"], c["export_file"]],
            api_visibility="private",
        )
    )

    def toggle(purpose: str):
        @guarded
        def change(profile: gr.OAuthProfile | None, key_value, value):
            user_id = ctx.uid(key_value, profile)
            _require_user(ctx, user_id)
            if purpose == "restricted":
                ctx.studio.privacy.restrict(user_id, value is True)
            else:  # training consent, or the objection to analytics (its withdrawal)
                training = purpose == "training"
                granted = value is True if training else value is not True
                ctx.studio.privacy.set_consent(
                    user_id, "training" if training else "analytics", granted, "ui"
                )
            return choices_view(ctx, user_id)

        change.__name__ = f"set_{purpose}"
        return change

    for purpose, api_name in (
        ("training", "set_training_consent"),
        ("objection", "set_analytics_objection"),
        ("restricted", "set_restriction"),
    ):
        c[purpose].input(toggle(purpose), [key, c[purpose]], choice_outputs, api_name=api_name)

    @guarded
    def make_export(profile: gr.OAuthProfile | None, key_value):
        user_id = ctx.uid(key_value, profile)
        _require_user(ctx, user_id)
        target = ctx.download_dir() / ctx.studio.privacy.export_filename(user_id)
        result = ctx.studio.privacy.export(user_id, target)
        ctx.studio.served.add(user_id, ["export"], result.path)
        gr.Info(f"Export ready: {result.files} files, {result.bytes / 1e6:.1f} MB.")
        return gr.File(value=str(result.path), visible=True)

    c["export"].click(make_export, [key], c["export_file"], api_name="export")

    @guarded
    def erase_everything(profile: gr.OAuthProfile | None, key_value, typed):
        user_id = ctx.uid(key_value, profile)
        if (typed or "").strip() != CONFIRM_WORD:
            raise ValidationError(f"Type {CONFIRM_WORD} (in capitals) to confirm.")
        _require_user(ctx, user_id)
        report = ctx.studio.privacy.erase(user_id)
        new_key = key_value if ctx.identity.signed_in(profile) else new_user_key()
        return fmt.erasure_report(report), "", new_key, gr.update(value=None, visible=False)

    after_identity_change(
        c["erase"].click(
            erase_everything,
            [key, c["erase_confirm"]],
            [c["erase_report"], c["erase_confirm"], key, c["export_file"]],
            api_name="erase",
        )
    )

    # -- the gate above the tabs ------------------------------------------------------------

    @guarded
    def confirm(profile: gr.OAuthProfile | None, key_value, checked):
        user_id = ctx.uid(key_value, profile)
        if checked is not True:
            raise ValidationError(
                f"Tick “I am at least {ctx.settings.min_age} years old” to continue."
            )
        ctx.studio.privacy.confirm_age(user_id)
        ctx.studio.privacy.acknowledge_policy(user_id)
        return gr.update(visible=False), gr.update(visible=False), *choices_view(ctx, user_id)

    gate["age_button"].click(
        confirm,
        [key, gate["age_check"]],
        [gate["age_group"], gate["notice_group"], *choice_outputs],
        api_name="confirm_age",
    )

    @guarded
    def acknowledge(profile: gr.OAuthProfile | None, key_value):
        ctx.studio.privacy.acknowledge_policy(ctx.uid(key_value, profile))
        return gr.update(visible=False)

    gate["notice_ack"].click(
        acknowledge, [key], gate["notice_group"], api_name="acknowledge_policy"
    )
    gate["notice_read"].click(
        lambda: gr.Tabs(selected="privacy"), None, ctx.tabs, api_visibility="private"
    )
