"""A user's own images, as every front door works with them: ``studio.images``.

A page of history with "is there more", one image, a download in another format, the request
that makes an image again, and deletion of one, several or all images with every copy of them
(``privacy.erasure.delete_images``). Every method takes the caller's user id and passes it on,
so another user's image is "not found", whatever id is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError, ValidationError, whole
from .export import check_format, export_image
from .params import GenerationRequest, request_from_params
from .privacy import erasure

if TYPE_CHECKING:
    from .service import Studio

PER_PAGE = 24
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a user's history, newest first (``page`` counts from 1)."""

    items: list[dict[str, Any]]
    page: int
    per_page: int
    has_newer: bool
    has_older: bool
    total: int

    @property
    def first(self) -> int:
        """1-based position of the first item (0 when the page is empty)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.per_page + len(self.items)


class Images:
    """The images of each user: listing, downloading, reusing and deleting them."""

    def __init__(self, studio: Studio):
        self.studio = studio

    def page(self, user_id: str, page: Any = 1, per_page: Any = PER_PAGE) -> Page:
        """The user's images on ``page`` (one extra row says whether an older page exists);
        a page past the end falls back to the last one, so deleting its images keeps a view."""
        page = whole(page, "page", 1, MAX_PAGE)
        per_page = whole(per_page, "per_page", 1, MAX_PER_PAGE)
        total = self.studio.store.count_generations(user_id)
        page = max(1, min(page, -(-total // per_page)))
        rows = self.rows(user_id, limit=per_page + 1, offset=(page - 1) * per_page)
        return Page(rows[:per_page], page, per_page, page > 1, len(rows) > per_page, total)

    def rows(self, user_id: str, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """The user's generation rows, newest first (the HTTP API pages by offset)."""
        return self.studio.store.list_generations(user_id, limit=limit, offset=offset)

    def get(self, user_id: str, image_id: Any) -> dict[str, Any]:
        """The user's generation ``image_id`` whose file still exists; else NotFoundError."""
        if not isinstance(image_id, str) or not image_id.strip():
            raise ValidationError("image: choose an image first.")
        row = self.studio.store.get_generation(user_id, image_id.strip())
        path = Path(row.get("file_path") or "")
        own = (self.studio.settings.images_dir / user_id).resolve()
        if not path.is_file() or not path.resolve().is_relative_to(own):
            raise NotFoundError(f"No generation with id {image_id!r}.")
        return row

    def download(
        self, user_id: str, image_id: str, fmt: str, out_dir: str | Path, quality: int = 90
    ) -> Path:
        """The image as ``<image_id>.<ext>`` in ``out_dir`` (PNG: the stored bytes; JPEG and
        WebP: converted, then C2PA-signed as a transcoded copy of the PNG), registered as a
        copy of the image, so deleting the image or the user deletes it too."""
        target = check_format(fmt)
        row = self.get(user_id, image_id)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{row['id']}.{EXTENSIONS[target]}"
        data = export_image(row["file_path"], target, quality)
        if target != "PNG":  # the stored PNG is signed already; a conversion is signed here
            stored = Path(row["file_path"])
            params = row.get("params") or {}
            data = self.studio.provenance.sign_copy(data, stored, params, user_id=user_id)
        path.write_bytes(data)
        self.studio.served.add(user_id, [row["id"]], path)
        return path

    def reuse(self, user_id: str, image_id: str) -> GenerationRequest:
        """The request that makes the user's image ``image_id`` again, from its parameters."""
        params = dict(self.studio.store.get_generation(user_id, image_id).get("params") or {})
        if "seed" not in params:
            raise ValidationError("image: this image carries no parameters to reuse.")
        return request_from_params(params)

    def delete(self, user_id: str, image_ids: Iterable[str] | str) -> dict[str, int]:
        """Delete images of the user: rows, files, every registered copy; counts by kind."""
        ids = [image_ids] if isinstance(image_ids, str) else list(image_ids)
        if not ids or not all(isinstance(i, str) and i.strip() for i in ids):
            raise ValidationError("image: choose an image first.")
        return erasure.delete_images(self.studio, user_id, [i.strip() for i in ids])

    def delete_all(self, user_id: str) -> int:
        """Delete every image of the user in one batch (one database scrub); how many."""
        ids: list[str] = []
        while True:  # bounded by the user's own rows, 1000 per read
            rows = self.rows(user_id, limit=1000, offset=len(ids))
            ids.extend(row["id"] for row in rows)
            if len(rows) < 1000:
                break
        return self.delete(user_id, ids)["images"] if ids else 0
