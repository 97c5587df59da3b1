"""A user's own images and characters, as the web app (and any front door) works with them.

Small functions over the store and the privacy module that the store alone does not offer: a
page of history with "is there more", deleting images with their files and cached copies,
"delete all", a download in another format, the request that reuses an image's parameters,
and the character library with its reference files. Every function takes the caller's user
id and passes it on, so another user's image or character is "not found", whatever id is
sent.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .engine.request import GenerationRequest
from .errors import NotFoundError, ValidationError
from .export import check_format, export_image
from .images import ImageSource, load_image
from .privacy import correction, erasure
from .privacy.files import CopyFinder, owned_path, reference_dir, remove_copies, save_references
from .service import Studio, request_from_params

PER_PAGE = 24
MAX_PER_PAGE = 100
MAX_REFERENCES = 4
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a user's history, newest first (``page`` counts from 1)."""

    items: list[dict[str, Any]]
    page: int
    per_page: int
    has_newer: bool
    has_older: bool

    @property
    def first(self) -> int:
        """1-based position of the first item (0 when the page is empty)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.per_page + len(self.items)


def _page_number(page: Any) -> int:
    if isinstance(page, float) and page.is_integer():
        page = int(page)
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValidationError(f"page: expected a whole number of at least 1, got {page!r}.")
    return page


def list_page(studio: Studio, user_id: str, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """The user's images on ``page``; one extra row is read to know whether an older page exists."""
    page = _page_number(page)
    if isinstance(per_page, bool) or not isinstance(per_page, int):
        raise ValidationError(f"per_page: expected a whole number, got {per_page!r}.")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(f"per_page: {per_page} is out of range; allowed 1 to {MAX_PER_PAGE}.")
    rows = studio.store.list_generations(user_id, limit=per_page + 1, offset=(page - 1) * per_page)
    return Page(rows[:per_page], page, per_page, page > 1, len(rows) > per_page)


def count_images(studio: Studio, user_id: str) -> int:
    """How many images the user has (the store's count when it offers one)."""
    counter = getattr(studio.store, "count_generations", None)
    if counter is not None:
        return int(counter(user_id))
    total, offset = 0, 0
    while True:  # bounded by the user's own rows, 1000 per read
        rows = studio.store.list_generations(user_id, limit=1000, offset=offset)
        total += len(rows)
        if len(rows) < 1000:
            return total
        offset += 1000


def get_image(studio: Studio, user_id: str, image_id: Any) -> dict[str, Any]:
    """The user's generation ``image_id`` whose file still exists; else NotFoundError."""
    if not isinstance(image_id, str) or not image_id.strip():
        raise ValidationError("image: choose an image first.")
    row = studio.store.get_generation(user_id, image_id.strip())
    if not row.get("file_path") or not Path(row["file_path"]).is_file():
        raise NotFoundError(f"No generation with id {image_id!r}.")
    return row


def download(
    studio: Studio,
    user_id: str,
    image_id: str,
    fmt: str,
    out_dir: str | Path,
    quality: int = 90,
) -> Path:
    """The image as a file named ``<image_id>.<ext>`` in ``out_dir`` (PNG: a copy, unchanged)."""
    target = check_format(fmt)
    row = get_image(studio, user_id, image_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{row['id']}.{EXTENSIONS[target]}"
    path.write_bytes(export_image(row["file_path"], target, quality))
    return path


def remove_cached_copies(names: Iterable[str], cache_dirs: Sequence[str | Path] = ()) -> int:
    """Delete copies called ``name`` one level below each cache dir (how Gradio caches files:
    ``<cache>/<content hash>/<name>``) and the emptied folders; return how many were removed."""
    removed = 0
    wanted = {name for name in names if name}
    for cache in cache_dirs:
        root = Path(cache)
        if not wanted or not root.is_dir():
            continue
        for folder in root.iterdir():
            if not folder.is_dir():
                continue
            for name in wanted:
                copy = folder / name
                if copy.is_file():
                    copy.unlink(missing_ok=True)
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
    return removed


def _converted_names(image_ids: Iterable[str]) -> list[str]:
    """Names of the converted downloads of these images (``download`` writes them); the PNG
    and its copies are found by the privacy module."""
    return [f"{image_id}.{ext}" for image_id in image_ids for ext in ("jpg", "webp")]


def delete_image(
    studio: Studio, user_id: str, image_id: Any, cache_dirs: Sequence[str | Path] = ()
) -> dict[str, int]:
    """Delete one of the user's images: record, file, cached copies and converted downloads
    (``privacy.erasure.delete_image``, which also audits and scrubs the database)."""
    if not isinstance(image_id, str) or not image_id.strip():
        raise ValidationError("image: choose an image first.")
    counts = erasure.delete_image(studio, user_id, image_id.strip(), cache_dirs)
    remove_cached_copies(_converted_names([image_id.strip()]), cache_dirs)
    return counts


def all_image_ids(studio: Studio, user_id: str) -> list[str]:
    ids: list[str] = []
    while True:  # bounded by the user's own rows, 1000 per read
        rows = studio.store.list_generations(user_id, limit=1000, offset=len(ids))
        ids.extend(row["id"] for row in rows)
        if len(rows) < 1000:
            return ids


def delete_all(studio: Studio, user_id: str, cache_dirs: Sequence[str | Path] = ()) -> int:
    """Delete every image of the user in one batch (one database scrub); return how many."""
    ids = all_image_ids(studio, user_id)
    if not ids:
        return 0
    counts = erasure.delete_images(studio, user_id, ids, cache_dirs)
    remove_cached_copies(_converted_names(ids), cache_dirs)
    return counts["images"]


def remove_converted_downloads(
    studio: Studio, user_id: str, cache_dirs: Sequence[str | Path] = ()
) -> int:
    """Remove the converted downloads of all the user's images (before an erasure, which
    recognises copies of the PNGs but not JPEG/WebP conversions of them)."""
    return remove_cached_copies(_converted_names(all_image_ids(studio, user_id)), cache_dirs)


def reuse_request(studio: Studio, user_id: str, image_id: str) -> GenerationRequest:
    """The request that makes the user's image ``image_id`` again, from its stored parameters."""
    row = studio.store.get_generation(user_id, image_id)
    params = dict(row.get("params") or {})
    if "prompt" not in params or "seed" not in params:
        raise ValidationError("image: this image carries no parameters to reuse.")
    return request_from_params(params)


# -- characters ---------------------------------------------------------------------------------


def _references(references: Sequence[ImageSource] | None) -> list:
    """Check every reference before anything is written (the store refuses nothing later)."""
    if not references:
        raise ValidationError(f"references: add 1 to {MAX_REFERENCES} reference images.")
    if len(references) > MAX_REFERENCES:
        raise ValidationError(
            f"references: {len(references)} images; a character has at most {MAX_REFERENCES}."
        )
    for index, source in enumerate(references):
        load_image(source, f"references[{index}]")
    return list(references)


def _require_rights(rights_confirmed: Any) -> datetime:
    if rights_confirmed is not True:
        raise ValidationError(
            "rights: confirm that you have the rights to use these reference images."
        )
    return datetime.now(timezone.utc)


def list_characters(studio: Studio, user_id: str) -> list[dict[str, Any]]:
    return studio.store.list_characters(user_id)


def create_character(
    studio: Studio,
    user_id: str,
    name: str,
    references: Sequence[ImageSource],
    rights_confirmed: bool,
    strength: float | None = None,
) -> str:
    """Check and store 1-4 references (upright RGB PNGs in the user's reference folder) and
    the character; return its id. The user's confirmation that they may use the images is
    required and stored with it (``rights_confirmed_at``)."""
    confirmed_at = _require_rights(rights_confirmed)
    sources = _references(references)
    studio.store.ensure_user(user_id)
    character_id = studio.store.create_character(
        user_id, name, [], rights_confirmed_at=confirmed_at, strength=strength
    )
    try:
        paths = save_references(studio.settings, user_id, character_id, sources)
        studio.store.update_character(user_id, character_id, reference_paths=paths)
    except BaseException:
        studio.store.delete_character(user_id, character_id)
        shutil.rmtree(reference_dir(studio.settings, user_id, character_id), ignore_errors=True)
        raise
    return character_id


def rename_character(studio: Studio, user_id: str, character_id: str, name: str) -> None:
    correction.rename_character(studio, user_id, character_id, name)


def replace_references(
    studio: Studio,
    user_id: str,
    character_id: str,
    references: Sequence[ImageSource],
    rights_confirmed: bool,
    cache_dirs: Sequence[str | Path] = (),
) -> None:
    """New references for the user's character (``privacy.correction``: old files and their
    copies removed, embeddings reset) with a fresh confirmation of the rights to use them."""
    confirmed_at = _require_rights(rights_confirmed)
    sources = _references(references)
    studio.store.get_character(user_id, character_id)  # another user's: NotFoundError first
    correction.replace_character_references(
        studio, user_id, character_id, sources, cache_dirs=cache_dirs
    )
    studio.store.update_character(user_id, character_id, rights_confirmed_at=confirmed_at)


def delete_character(
    studio: Studio, user_id: str, character_id: str, cache_dirs: Sequence[str | Path] = ()
) -> None:
    """Delete the user's character, its reference files, their folder and cached copies."""
    row = studio.store.get_character(user_id, character_id)
    originals = [
        owned
        for path in row.get("reference_paths") or []
        if (owned := owned_path(studio.settings, user_id, path)) is not None
    ]
    finder = CopyFinder(originals)
    if cache_dirs:
        finder.prepare()
    studio.store.delete_character(user_id, character_id)
    remove_copies(finder, [Path(c) for c in cache_dirs])
    shutil.rmtree(reference_dir(studio.settings, user_id, character_id), ignore_errors=True)
