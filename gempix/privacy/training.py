"""The training manifest: the only way GemPix hands generations to a training pipeline.

A generation is listed only while its user's latest ``training`` consent is a grant and the
user is neither restricted nor being erased, evaluated when the manifest is written; a user
who withdraws is absent from the next manifest. Lines carry no user id (a dataset needs none),
only the generation, its parameters, its image path and the consent entry that allowed it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.privacy_queries import iter_training_rows
from .jsonout import json_value

if TYPE_CHECKING:
    from ..service import Studio


@dataclasses.dataclass(frozen=True)
class ManifestResult:
    path: Path
    generations: int


def manifest_line(row: dict[str, Any]) -> dict[str, Any]:
    """One JSONL entry: the generation, its image, and the consent it rests on."""
    return {
        "generation_id": row["id"],
        "created_at": json_value(row["created_at"]),
        "prompt": row["prompt"],
        "negative_prompt": row["negative_prompt"],
        "model": row["model"],
        "seed": row["seed"],
        "steps": row["steps"],
        "guidance": json_value(row["guidance"]),
        "width": row["width"],
        "height": row["height"],
        "styles": list(row["styles"] or []),
        "params": json_value(row["params"]),
        "image": row["file_path"],
        "consent": {
            "id": row["consent_id"],
            "granted_at": json_value(row["consent_at"]),
            "policy_version": row["consent_policy_version"],
        },
    }


def training_manifest(studio: Studio, path: str | Path) -> ManifestResult:
    """Write the JSONL manifest of generations that may be used for training now.

    Written to ``path.partial`` and renamed when complete, so a reader never sees half a
    manifest; memory holds one page of rows at a time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            for row in iter_training_rows(studio.store):
                out.write(json.dumps(manifest_line(row), ensure_ascii=False, allow_nan=False))
                out.write("\n")
                count += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return ManifestResult(path, count)
