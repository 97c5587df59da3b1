"""What every tab of the app shares: the studio, who is calling, and the copies it serves.

Every file the page can fetch is a copy in Gradio's cache, written here and registered with
the core as a copy of the image or character it shows (``studio.served``), so deleting that
image, that character or the whole user deletes the copy too, from any front door.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils

from ..service import Studio
from .identity import Identity

# Stages the service reports, as the progress bar words them.
STAGES = {
    "denoise": "Generating",
    "upscale": "Upscaling",
    "load": "Loading the model",
    "compile": "Compiling the model for this size (first image at this size only)",
}


@dataclasses.dataclass
class Ctx:
    studio: Studio
    identity: Identity
    cache_dir: Path  # Gradio's cache for this app: what the page can fetch lives here
    key: Any = None  # the gr.BrowserState holding the user key
    tabs: Any = None  # the gr.Tabs, so that "reuse parameters" can switch to Create
    create: dict[str, Any] = dataclasses.field(default_factory=dict)
    edit: dict[str, Any] = dataclasses.field(default_factory=dict)
    refresh_characters: list[Any] = dataclasses.field(default_factory=list)
    _cancel: dict[str, threading.Event] = dataclasses.field(default_factory=dict)
    _cancel_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def settings(self):
        return self.studio.settings

    def uid(self, key: Any, profile: Any = None) -> str:
        return self.identity.user_id(key, profile)

    def served(self, user_id: str, owners: Iterable[str], path: str | Path) -> str:
        """A copy of ``path`` in Gradio's cache (named as the original), which the page can
        fetch wherever the data directory is (Gradio serves it without a second copy),
        registered as a copy of ``owners`` (image or character ids)."""
        copy = processing_utils.save_file_to_cache(str(path), cache_dir=str(self.cache_dir))
        self.studio.served.add(user_id, owners, copy)
        return copy

    def uploaded(self, user_id: str, owners: Iterable[str], paths: Iterable[Any]) -> None:
        """Register the files a user uploaded (Gradio keeps them in its cache) as theirs."""
        for path in paths:
            if path:
                self.studio.served.add(user_id, owners, getattr(path, "name", path))

    def download_dir(self) -> Path:
        """A fresh folder in Gradio's cache for one prepared download (ZIP, JPEG, previews)."""
        folder = self.cache_dir / f"gempix-{uuid.uuid4().hex}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- cancelling a running generation --------------------------------------------------------

    def cancel_flag(self, session: str | None) -> threading.Event:
        """A fresh flag for the session's generation that starts now."""
        flag = threading.Event()
        if session:
            with self._cancel_lock:
                self._cancel[session] = flag
        return flag

    def running(self, session: str | None) -> bool:
        """Whether this browser session has a generation or edit running now."""
        with self._cancel_lock:
            return bool(session) and session in self._cancel

    def cancel(self, session: str | None) -> bool:
        with self._cancel_lock:
            flag = self._cancel.get(session or "")
        if flag is None:
            return False
        flag.set()
        return True

    def done(self, session: str | None, flag: threading.Event) -> None:
        with self._cancel_lock:
            if self._cancel.get(session or "") is flag:
                del self._cancel[session]


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None
