"""The web app: a Gradio Blocks studio over the ``Studio`` (translation only: every rule is the
core's, see docs/architecture.md).

``build_app(studio)`` is the contract: ``launch`` here and the FastAPI server (which mounts it
next to the HTTP API) both call it, then pass ``launch_options()`` to ``launch`` or
``gr.mount_gradio_app``. Tabs: Create, Edit, Gallery, Characters, Verify, Privacy, API and
Analytics (admins only). Identity: ``identity.py``. Every copy it serves is registered with the core
(``context.Ctx.served``), so every deletion, through any door, removes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..images import MAX_IMAGE_BYTES
from ..service import Studio
from ..settings import Settings
from . import analytics, characters, create, edit, history, keys, privacy, verify
from .context import Ctx
from .errors import guarded
from .identity import STORAGE_KEY, Identity, browser_secret

TITLE = "GemPix"
TINY_BANNER = (
    "**Offline demo model.** The `tiny` model is serving: it has random weights and draws "
    "noise, not pictures."
)
MAX_QUEUE = 32  # waiting requests of all kinds; one more gets "busy, try again"
DELETE_CACHE = (1800, 7200)  # every 30 min, drop served copies older than 2 h
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate")
CSS = """
#tiny-banner { background: #fef3c7; border: 1px solid #f59e0b; border-radius: 8px;
  padding: 6px 12px; }
#age-gate, #policy-notice { border: 2px solid var(--color-accent); border-radius: 8px;
  padding: 4px; }
.details table { font-size: 0.85em; }
.details td, .details th { padding: 2px 8px; }
#selected input, #edit-selected input { font-family: var(--font-mono); font-size: 0.8em; }
"""


# Ctrl/Cmd+Enter runs the visible tab's main action (Generate, Edit), as in other studios.
SHORTCUTS = """<script>
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.key !== "Enter") return;
  for (const id of ["generate-button", "edit-button"]) {
    const button = document.getElementById(id);
    if (button && button.offsetParent !== null) {
      event.preventDefault();
      button.click();
      return;
    }
  }
});
</script>"""


def banner_text(studio: Studio) -> str:
    loaded = studio.model()
    if loaded.notice:
        return f"**Offline.** {loaded.notice}"
    return TINY_BANNER if loaded.preset.is_tiny else ""


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` *and* ``gr.mount_gradio_app``.

    No run history (prompts would be kept in the browser's localStorage), no error details
    beyond ``gr.Error`` messages, uploads capped at the size ``gempix.images`` accepts, and the
    theme and CSS (which Gradio 6 takes at launch, not in ``Blocks``).
    """
    return {
        "footer_links": ["api"],
        "run_history": False,
        "show_error": False,
        "max_file_size": MAX_IMAGE_BYTES,
        "theme": THEME,
        "css": CSS,
        "head": SHORTCUTS,
    }


def running_on_space() -> bool:
    """Hugging Face sets ``SPACE_ID`` in every Space: there, visitors may sign in with OAuth."""
    return bool(os.environ.get("SPACE_ID"))


def build_app(studio: Studio, *, on_space: bool = False, max_queue: int = MAX_QUEUE) -> gr.Blocks:
    """The Blocks app for one studio (queue configured; launch with ``launch_options()``).

    ``on_space``: a Hugging Face Space with OAuth; a "Sign in" button is shown and a signed-in
    visitor is the user derived from their username.
    """
    settings = studio.settings
    ctx = Ctx(
        studio=studio,
        identity=Identity(studio, on_space=on_space),
        cache_dir=Path(get_upload_folder()),
    )
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as app:
        ctx.key = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=browser_secret(settings))
        with gr.Row(equal_height=True):
            gr.Markdown(f"# {TITLE}\nText to image with styles, characters and 4K output.")
            if on_space:
                gr.LoginButton(scale=0, min_width=220)
        text = banner_text(studio)
        banner = gr.Markdown(text, visible=bool(text), elem_id="tiny-banner")
        gate = privacy.build_gate(ctx)
        with gr.Tabs() as ctx.tabs:
            create.build(ctx)
            edit.build(ctx)
            gallery_tab = history.build(ctx)
            characters_tab = characters.build(ctx)
            verify.build(ctx)
            privacy_tab = privacy.build(ctx, on_space)
            keys_tab = keys.build(ctx)
            analytics_tab = analytics.build(ctx)

        key = ctx.key
        refreshers = [gallery_tab, characters_tab, privacy_tab, keys_tab]

        @guarded
        def start(profile: gr.OAuthProfile | None, key_value):
            """Give a new browser its key; show the gate, the notice, the admin tab."""
            key_value = ctx.identity.key_or_new(key_value)
            user_id = ctx.uid(key_value, profile)
            flags = privacy.user_flags(ctx, user_id)
            text = banner_text(studio)
            return (
                key_value,
                gr.update(value=text, visible=bool(text)),
                gr.update(visible=not flags["confirmed"]),
                False,
                gr.update(visible=flags["notice"]),
                gr.Tab(visible=ctx.studio.privacy.is_admin(user_id)),
            )

        start_outputs = [
            key,
            banner,
            gate["age_group"],
            gate["age_check"],
            gate["notice_group"],
            analytics_tab["tab"],
        ]

        def refresh_all(event):
            for tab in refreshers:
                event = event.then(tab["show"], [key], tab["outputs"], api_visibility="private")
            return event

        def after_identity_change(event):
            refresh_all(event.then(start, [key], start_outputs, api_visibility="private"))

        privacy.wire(ctx, privacy_tab, gate, after_identity_change)
        refresh_all(app.load(start, [key], start_outputs, api_visibility="private"))

        @guarded
        def list_images(key: str, page: int = 1) -> list[dict]:
            """Your images on one page (24 per page), newest first, with their parameters."""
            user_id = ctx.uid(key)
            rows = studio.images.page(user_id, page).items
            return [
                {
                    "id": row["id"],
                    "created_at": row["created_at"].isoformat() if row.get("created_at") else None,
                    "width": row["width"],
                    "height": row["height"],
                    "seed": row["seed"],
                    "params": row.get("params") or {},
                }
                for row in rows
            ]

        gr.api(list_images, api_name="list_images")
    # api_open=False: POST /gradio_api/api/<name> and /run/<name> would run a function past
    # the queue's size, the GPU concurrency limit and the web rate limit (tests/test_security.py)
    return app.queue(max_size=max_queue, default_concurrency_limit=4, api_open=False)


def launch(settings: Settings, **kwargs):
    """Start the app on ``settings.host:settings.port``; extra kwargs go to ``Blocks.launch``."""
    app = build_app(Studio(settings), on_space=running_on_space())
    options = {**launch_options(), **kwargs}
    return app.launch(server_name=settings.host, server_port=settings.port, **options)
