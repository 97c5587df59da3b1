"""Who may read what GemPix writes: its owner only.

Everything under the data dir is personal (prompts in the database, its WAL and in image
metadata, images, usage files, exports) and so is Gradio's cache (uploads, served copies,
previews, export ZIPs). Under the common umask 022 new folders would be 0755 and files 0644,
readable by every account on the machine. So the data dir and the cache are made 0700 (which
closes everything below them, whatever its own mode), and a server process runs under umask
077, so each file it writes is 0600 and each folder 0700 from the start
(``tests/test_security.py`` checks the modes under umask 022; docs/security.md).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_UMASK = 0o077


def private_dir(path: str | Path) -> Path:
    """``path`` as a folder only its owner can enter (made if missing, tightened if looser)."""
    folder = Path(path)
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != PRIVATE_DIR:
        folder.chmod(PRIVATE_DIR)
    return folder


def private_process() -> int:
    """Give this process umask 077 (every file it writes 0600, every folder 0700); return the
    umask it had. For a server, which writes personal files for its whole life."""
    return os.umask(PRIVATE_UMASK)
