"""Many requests from a JSONL file: resumable, with progress, split across processes.

Each input line is one full request, checked by the request model (``gempix.params``: the
fields of the HTTP API's body; images are paths). Results go to ``OUT/results.rank<N>.jsonl``,
one line per request, written as each finishes, so an interrupted run resumes where it
stopped: a line whose index and content hash already have an ``ok`` result is skipped.

Under ``torchrun --nproc_per_node N`` (or ``accelerate launch`` on GPUs) accelerate's
``PartialState`` splits the pending lines between processes; every rank renders its share
without touching the database, and only the main process admits the local operator first and
records afterwards what ``Studio.generate`` records: the generations and one usage event per
attempt (each counted once, across resumed runs). The data directory must be shared.

Each rank takes its lines ``LOOKAHEAD`` x ``GEMPIX_MAX_BATCH`` at a time and renders
same-shape requests among them together, at most ``GEMPIX_MAX_BATCH`` images per pipeline
call (``Studio.render_many``); every image keeps its own seed, so it is the image a run of
that line alone makes, within float rounding. Results are written after each window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GemPixError, NotFoundError, ValidationError
from .params import GenerationRequest
from .privacy.identity import LOCAL_USER
from .service import GeneratedImage, GenerationResult, Studio
from .settings import Settings

RESULTS_GLOB = "results.rank*.jsonl"
COUNTED_FILE = "counted.txt"  # attempts already counted as usage events
# Lines looked at together per GEMPIX_MAX_BATCH image: enough for same-shape lines a few lines
# apart to share a call, few enough that an interrupted run loses little finished work.
LOOKAHEAD = 4


@dataclasses.dataclass(frozen=True)
class BatchLine:
    index: int  # 1-based line number in the input file
    digest: str  # SHA-256 of the line's JSON, so an edited line is not taken as done
    request: GenerationRequest


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    total: int
    skipped: int
    done: int
    failed: int
    results: list[Path]


def read_lines(path: Path) -> list[BatchLine]:
    """Parse the whole file first, so a malformed line fails the run before any work."""
    lines = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"{path}: cannot read the prompts file ({error}).") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValidationError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
        if not isinstance(fields, dict):
            raise ValidationError(f"{path}:{number}: expected a JSON object with a prompt.")
        try:
            request = GenerationRequest(**fields)
        except ValidationError as error:
            raise ValidationError(f"{path}:{number}: {error.message}") from None
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        lines.append(BatchLine(number, digest, request))
    return lines


def results(out_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(Path(out_dir).glob(RESULTS_GLOB)):
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                yield json.loads(raw)


def _done(out_dir: Path) -> set[tuple[int, str]]:
    return {(r["line"], r["digest"]) for r in results(out_dir) if r["status"] == "ok"}


def _place(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (no second copy on disk), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _entry(line: BatchLine, result: GenerationResult | GemPixError, out_dir: Path) -> dict:
    """The results line of one input line, its images placed in ``out_dir/images``."""
    entry: dict[str, Any] = {"line": line.index, "digest": line.digest, "attempt": uuid.uuid4().hex}
    if isinstance(result, GemPixError):
        return {**entry, "status": "error", "error": result.message, "class": type(result).__name__}
    images = []
    for number, image in enumerate(result.images, start=1):
        output = out_dir / "images" / f"line{line.index:05d}-{number}.png"
        _place(image.path, output)
        images.append({**dataclasses.asdict(image), "path": str(image.path), "output": str(output)})
    return {
        **entry,
        "status": "ok",
        "model": result.model,
        "duration_ms": result.duration_ms,
        "warnings": result.warnings,
        "images": images,
    }


def _record_new(studio: Studio, lines: list[BatchLine], out_dir: Path) -> None:
    """Main process only: what ``Studio.generate`` records, for every result not yet recorded:
    the generations of ``ok`` lines and one usage event per attempt (idempotent)."""
    requests = {(line.index, line.digest): line.request for line in lines}
    counted_path = out_dir / COUNTED_FILE
    counted = set(counted_path.read_text().split()) if counted_path.is_file() else set()
    with counted_path.open("a") as ledger:
        for entry in results(out_dir):
            request = requests.get((entry["line"], entry["digest"]))
            if request is None or entry.get("attempt") in counted:
                continue
            result = _new_result(studio, entry) if entry["status"] == "ok" else None
            started = time.perf_counter() - entry.get("duration_ms", 0) / 1000
            error = "" if result else entry.get("class", "GemPixError")
            studio.record_usage(request, LOCAL_USER, "cli", started, result, error)
            ledger.write(f"{entry['attempt']}\n")


def _new_result(studio: Studio, entry: dict[str, Any]) -> GenerationResult:
    """The result of an ok line, recorded in the store unless it already is."""
    images = [
        GeneratedImage(
            image["id"],
            Path(image["path"]),
            image["seed"],
            image["width"],
            image["height"],
            image["params"],
        )
        for image in entry["images"]
    ]
    result = GenerationResult(images, entry["model"], entry["warnings"], "", entry["duration_ms"])
    try:
        studio.store.get_generation(LOCAL_USER, images[0].id)
    except NotFoundError:
        studio.record(result, user_id=LOCAL_USER, front_door="cli")
    return result


def run_batch(settings: Settings, prompts: Path, out_dir: Path, show_progress: bool = True):
    """Render every pending line of ``prompts`` into ``out_dir``; returns a BatchSummary."""
    from accelerate import PartialState
    from tqdm import tqdm

    lines = read_lines(prompts)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = PartialState(cpu=settings.device == "cpu" or not _has_gpu())
    done = _done(out_dir)
    pending = [line for line in lines if (line.index, line.digest) not in done]
    studio = Studio(settings)
    if state.is_main_process and pending:
        with studio:  # refused (an account being erased...) before any work
            studio.admit(pending[0].request, LOCAL_USER)
    results_path = out_dir / f"results.rank{state.process_index}.jsonl"
    finished = failed = 0
    with state.split_between_processes(pending) as mine, results_path.open("a") as log:
        visible = show_progress and state.is_main_process
        window = 1 if settings.max_batch == 1 else LOOKAHEAD * settings.max_batch
        with tqdm(total=len(mine), desc="batch", unit="prompt", disable=not visible) as bar:
            for start in range(0, len(mine), window):
                chunk = mine[start : start + window]
                rendered = studio.render_many([line.request for line in chunk])
                for line, result in zip(chunk, rendered, strict=True):
                    entry = _entry(line, result, out_dir)
                    log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    finished += entry["status"] == "ok"
                    failed += entry["status"] != "ok"
                log.flush()
                bar.update(len(chunk))
    state.wait_for_everyone()
    if state.is_main_process:
        with studio:
            _record_new(studio, lines, out_dir)
    return BatchSummary(
        total=len(lines),
        skipped=len(lines) - len(pending),
        done=finished,
        failed=failed,
        results=sorted(out_dir.glob(RESULTS_GLOB)),
    )


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
