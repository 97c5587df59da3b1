"""The Hugging Face Hub: is it reachable, and what is already in the local cache.

The offline rules (README.md, "Models") rest on these answers: a file in the local cache loads
without the network; otherwise the Hub is asked with a short timeout, and an unreachable Hub is
a clear message at once, never a hang.
"""

from __future__ import annotations

from pathlib import Path


def hub_reachable(timeout: float) -> bool:
    """True when the Hub answers within ``timeout`` seconds (any HTTP status counts)."""
    import httpx
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return False
    try:
        httpx.head(constants.ENDPOINT, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def cached_file(repo_id: str, filename: str) -> Path | None:
    """Where ``filename`` of ``repo_id`` is in the local cache; None when it is not there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def is_downloaded(repo_id: str) -> bool:
    """True when a diffusers model (its ``model_index.json``) is in the local cache."""
    try:
        return cached_file(repo_id, "model_index.json") is not None
    except ValueError:  # not a valid repo id
        return False


def download_hint(model: str) -> str:
    return f"Download it once while online with: gempix download {model}"
