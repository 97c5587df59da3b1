"""Where a user's files live, and finding every copy of them.

Every file of a user lives in one of their folders, ``data_dir/<kind>/<user_id>/`` for the
kinds in ``USER_FOLDERS``: generated images (``images/``, written by the service) and
character reference images (``references/<user_id>/<character_id>/``, written by
``save_references``). Export and erasure touch files only inside the user's own folders, so a
row that points elsewhere (a bug, or a hostile path) can neither leak another user's file into
an export nor delete it; such paths are counted and reported instead.

Copies outside the data dir are found in cache folders (Gradio keeps each served file as
``<cache>/<hash>/<original name>``) by file name, which for GemPix files is a random id, and,
for renamed copies, by size and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import ValidationError
from ..images import ImageSource, load_image
from ..settings import Settings

USER_FOLDERS = ("images", "references")
MAX_REFERENCES = 4
EXPORT_PREFIX = "gempix-export-"
UPLOADS_FILE = "uploads.sha256"
_CHUNK = 1 << 20


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    # Size and hash of each original upload, so erasure can also find copies of the uploads
    # themselves (a web front door's upload cache keeps them under their original names).
    with (folder / UPLOADS_FILE).open("a", encoding="ascii") as sidecar:
        for image in images:
            data = _source_bytes(image)
            if data is not None:
                sidecar.write(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n")
    return paths


def _source_bytes(image: ImageSource) -> bytes | None:
    if isinstance(image, bytes):
        return image
    if isinstance(image, (str, Path)):
        try:
            return Path(image).read_bytes()
        except OSError:
            return None
    return None


def upload_fingerprints(folders: Iterable[Path]) -> list[tuple[int, str]]:
    """(size, sha256) of every original upload recorded in ``folders`` by ``save_references``."""
    found = []
    for folder in folders:
        for path in Path(folder).rglob(UPLOADS_FILE) if Path(folder).is_dir() else ():
            for line in path.read_text(encoding="ascii").splitlines():
                size, _, digest = line.partition(" ")
                if size.isdigit() and len(digest) == 64:
                    found.append((int(size), digest))
    return found


def remove_file(path: Path) -> int | None:
    """Delete one file; return its size in bytes, or None if it was not there."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    return size


def remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove ``path``'s now-empty parent folders up to, not including, ``stop``."""
    parent = path.parent
    while parent != stop and parent.is_relative_to(stop):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


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


class CopyFinder:
    """Recognises copies of a known set of files: by name, else by size and SHA-256.

    Hashes of the originals are computed lazily, only for sizes that some candidate copy has,
    so sweeping a cache costs a stat per cached file and a hash per plausible match.
    """

    def __init__(
        self,
        originals: Iterable[Path],
        prefixes: Iterable[str] = (),
        fingerprints: Iterable[tuple[int, str]] = (),
    ):
        self.names: set[str] = set()
        self.by_size: dict[int, list[Path]] = {}
        self.prefixes = tuple(prefixes)
        self._hashes: dict[Path, str] = {}
        self.fingerprints: dict[int, set[str]] = {}
        for size, digest in fingerprints:
            self.fingerprints.setdefault(size, set()).add(digest)
        for path in originals:
            self.names.add(path.name)
            try:
                self.by_size.setdefault(path.stat().st_size, []).append(path)
            except FileNotFoundError:
                continue

    def prepare(self) -> None:
        """Hash every original now (call before the originals are deleted)."""
        for paths in self.by_size.values():
            for path in paths:
                self._hash(path)

    def _hash(self, path: Path) -> str | None:
        if path not in self._hashes:
            try:
                self._hashes[path] = sha256_file(path)
            except FileNotFoundError:
                return None
        return self._hashes[path]

    def is_copy(self, candidate: Path) -> bool:
        if candidate.name in self.names or candidate.name.startswith(self.prefixes):
            return True
        try:
            size = candidate.stat().st_size
        except FileNotFoundError:
            return False
        originals = self.by_size.get(size, [])
        if not originals and size not in self.fingerprints:
            return False
        digest = sha256_file(candidate)
        if digest in self.fingerprints.get(size, ()):
            return True
        return any(self._hash(original) == digest for original in originals)

    def copies_in(self, folders: Iterable[Path]) -> list[Path]:
        found = []
        for folder in folders:
            if Path(folder).is_dir():
                found.extend(p for p in files_under(Path(folder)) if self.is_copy(p))
        return found


def remove_copies(finder: CopyFinder, cache_dirs: Iterable[Path]) -> tuple[int, int]:
    """Delete every copy ``finder`` recognises in ``cache_dirs`` (and the emptied per-file
    folders Gradio made for them); return (files, bytes)."""
    files = size = 0
    for cache in cache_dirs:
        cache = Path(cache)
        for path in finder.copies_in([cache]):
            freed = remove_file(path)
            if freed is not None:
                files, size = files + 1, size + freed
            remove_empty_parents(path, cache)
    return files, size
