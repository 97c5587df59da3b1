"""Where a user's files live, and every copy of them a front door wrote elsewhere.

Every file of a user lives in one of their folders, ``data_dir/<kind>/<user_id>/`` for the
kinds in ``USER_FOLDERS``: generated images (``images/``, written by the service), character
reference images (``references/<user_id>/<character_id>/``, written by ``save_references``)
and the list of served copies (``served/``). Export and erasure touch files only inside the
user's own folders, so a row that points elsewhere (a bug, or a hostile path) can neither leak
another user's file into an export nor delete it; such paths are counted and reported instead.

Copies outside the data dir (the web app's copies in Gradio's cache: served PNGs, JPEG/WebP
downloads, previews, uploads, export ZIPs) are registered by whoever writes them in
``ServedCopies``, so deleting an image, a character or a whole user deletes them too, from any
process, without the core knowing any front door's cache layout (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import ValidationError
from ..images import ImageSource, load_image
from ..params import MAX_REFERENCES
from ..settings import Settings

USER_FOLDERS = ("images", "references", "served")
SERVED_FILE = "copies.jsonl"


def user_folders(settings: Settings, user_id: str) -> list[Path]:
    """The folders that hold only this user's files."""
    return [Path(settings.data_dir) / kind / user_id for kind in USER_FOLDERS]


def reference_dir(settings: Settings, user_id: str, character_id: str) -> Path:
    """The folder of one character's reference images."""
    return Path(settings.data_dir) / "references" / user_id / character_id


def owned_path(settings: Settings, user_id: str, path: str | Path | None) -> Path | None:
    """``path`` resolved, if it lies inside one of the user's folders; else None."""
    if not path:
        return None
    resolved = Path(path).resolve()
    for folder in user_folders(settings, user_id):
        if resolved.is_relative_to(folder.resolve()):
            return resolved
    return None


def files_under(folder: Path) -> Iterator[Path]:
    """Every regular file below ``folder`` (symbolic links are not followed)."""
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path


def save_references(
    settings: Settings, user_id: str, character_id: str, images: Sequence[ImageSource]
) -> list[str]:
    """Check 1-4 reference images and store them as PNG in the character's folder.

    Each goes through ``gempix.images.load_image`` (real image, size limits, EXIF-upright,
    RGB); nothing is written unless all of them pass. Returns the stored paths, to be kept in
    the character's ``reference_paths`` (create the character first to get its id).
    """
    if not isinstance(images, (list, tuple)) or not 1 <= len(images) <= MAX_REFERENCES:
        raise ValidationError(f"references: give 1 to {MAX_REFERENCES} reference images.")
    pictures = [load_image(image, f"references[{n}]") for n, image in enumerate(images)]
    folder = reference_dir(settings, user_id, character_id)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for picture in pictures:
        path = folder / f"{uuid.uuid4().hex}.png"
        picture.save(path, format="PNG")
        paths.append(str(path))
    return paths


def remove_file(path: Path) -> int | None:
    """Delete one file; return its size in bytes, or None if it was not there."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    return size


def remove_tree(folder: Path) -> tuple[int, int]:
    """Delete a folder and everything in it; return (files, bytes) removed."""
    files = size = 0
    if not folder.exists():
        return 0, 0
    for path in files_under(folder):
        freed = remove_file(path)
        if freed is not None:
            files, size = files + 1, size + freed
    shutil.rmtree(folder, ignore_errors=True)
    return files, size


class ServedCopies:
    """The copies of each user's files that front doors wrote outside the data dir.

    One JSON line ``[owner, path]`` per copy in ``served/<user_id>/copies.jsonl``; the owner is
    the generation or character the copy shows, or a word for what belongs to the user as a
    whole (``upload``, ``export``). A file in the user's own folder rather than a table: every
    process erasing the user (the CLI while the app runs, a notebook) reads what the web app
    wrote, restarts forget nothing, and erasure removes the list with the user's folders.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._known: set[tuple[str, str, str]] = set()  # written by this process already

    def _file(self, user_id: str) -> Path:
        return Path(self.settings.data_dir) / "served" / user_id / SERVED_FILE

    def add(self, user_id: str, owners: Iterable[str], path: str | Path) -> None:
        """Register ``path``, a copy showing ``owners`` (image or character ids, ``upload``)."""
        copy = str(Path(path).resolve())
        with self._lock:
            new = [owner for owner in owners if (user_id, owner, copy) not in self._known]
            if not new:
                return
            file = self._file(user_id)
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("a", encoding="utf-8") as out:
                out.write("".join(json.dumps([owner, copy]) + "\n" for owner in new))
            self._known.update((user_id, owner, copy) for owner in new)

    def entries(self, user_id: str) -> list[tuple[str, Path]]:
        try:
            text = self._file(user_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [(owner, Path(path)) for owner, path in map(json.loads, text.splitlines())]

    def paths(self, user_id: str, owners: Iterable[str] | None = None) -> list[Path]:
        """The registered copies of ``owners`` (all the user's when None), existing or not."""
        wanted = None if owners is None else set(owners)
        found = [path for owner, path in self.entries(user_id) if wanted is None or owner in wanted]
        return list(dict.fromkeys(found))

    def remove(self, user_id: str, owners: Iterable[str] | None = None) -> tuple[int, int]:
        """Delete the copies of ``owners`` (all when None), and the emptied folders the front
        door made for them; forget them. Returns (files, bytes) removed."""
        wanted = None if owners is None else set(owners)
        with self._lock:
            entries = self.entries(user_id)
            doomed = {path for owner, path in entries if wanted is None or owner in wanted}
            kept = [(owner, path) for owner, path in entries if path not in doomed]
            self._known.difference_update((user_id, o, str(p)) for o, p in entries if p in doomed)
            files = size = 0
            for path in doomed:
                freed = remove_file(path)
                if freed is not None:
                    files, size = files + 1, size + freed
                    with contextlib.suppress(OSError):  # the folder made for it, once empty
                        path.parent.rmdir()
            file = self._file(user_id)
            if entries and kept:
                file.write_text("".join(json.dumps([o, str(p)]) + "\n" for o, p in kept))
            elif entries:
                file.unlink(missing_ok=True)
        return files, size
