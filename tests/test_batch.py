"""The batch runner: every line done once, resumable, split across processes, one DB writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from gempix.batch import read_lines, results, run_batch
from gempix.errors import UserLockedError, ValidationError
from gempix.metadata import read_params
from gempix.privacy.identity import LOCAL_USER
from gempix.service import Studio


def write_prompts(path, count, extra=()):
    lines = [json.dumps({"prompt": f"fox {n}", "seed": n}) for n in range(count)]
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def usage_statuses(studio) -> Counter:
    return Counter(studio.store.usage_events()["status"])


def test_runs_every_line_and_resumes(settings, tmp_path):
    bad_size = '{"prompt": "x", "width": 65, "height": 64}'  # fails on the model, at run time
    prompts = write_prompts(tmp_path / "p.jsonl", 3, [bad_size])
    first = run_batch(settings, prompts, tmp_path / "out", show_progress=False)
    assert (first.done, first.failed, first.skipped, first.total) == (3, 1, 0, 4)
    entries = list(results(tmp_path / "out"))
    ok = [entry for entry in entries if entry["status"] == "ok"]
    assert sorted(entry["line"] for entry in ok) == [1, 2, 3]
    for entry in ok:
        output = entry["images"][0]["output"]
        assert read_params(output)["seed"] == entry["line"] - 1
    error = next(entry for entry in entries if entry["status"] == "error")
    assert error["line"] == 4 and error["error"].startswith("width: 65 is not a multiple of 8")

    again = run_batch(settings, prompts, tmp_path / "out", show_progress=False)
    assert (again.done, again.skipped) == (0, 3)
    with Studio(settings) as studio:
        assert len(studio.store.list_generations(LOCAL_USER)) == 3  # recorded exactly once
        # As Studio.generate counts: one usage event per attempt, each counted once.
        assert usage_statuses(studio) == {"ok": 3, "ValidationError": 2}


def test_a_user_being_erased_gets_no_batch(settings, tmp_path):
    with Studio(settings) as studio:
        studio.store.ensure_user(LOCAL_USER)
        studio.store.update_user(LOCAL_USER, locked=True)
    with pytest.raises(UserLockedError):
        run_batch(settings, write_prompts(tmp_path / "p.jsonl", 1), tmp_path / "out")
    assert not list((tmp_path / "out").glob("images/*.png"))


def test_an_edited_line_is_run_again(settings, tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 2)
    run_batch(settings, prompts, tmp_path / "out", show_progress=False)
    lines = prompts.read_text().splitlines()
    lines[1] = json.dumps({"prompt": "a different fox", "seed": 9})
    prompts.write_text("\n".join(lines) + "\n")
    again = run_batch(settings, prompts, tmp_path / "out", show_progress=False)
    assert (again.done, again.skipped) == (1, 1)


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"prompt": "ok"}\n{not json}\n', "p.jsonl:2: not valid JSON"),
        ('["a list"]\n', "p.jsonl:1: expected a JSON object"),
        ('{"prompt": "x", "colour": "red"}\n', "p.jsonl:1: colour: unknown field"),
        ('{"prompt": "x"}\n{"prompt": "   "}\n', "p.jsonl:2: prompt: must not be empty."),
        ('{"prompt": "x", "steps": "5"}\n', "p.jsonl:1: steps: expected a whole number"),
    ],
)
def test_malformed_file_fails_before_any_work(settings, tmp_path, content, message):
    (tmp_path / "p.jsonl").write_text(content)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_lines(tmp_path / "p.jsonl")


def test_two_processes_split_the_work_exactly_once(settings, tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 6)
    env = dict(os.environ, GEMPIX_DATA_DIR=str(settings.data_dir), GEMPIX_MODEL="tiny")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "gempix",
            "batch",
            str(prompts),
            "-o",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    entries = list(results(tmp_path / "out"))
    assert Counter(entry["line"] for entry in entries) == Counter(range(1, 7))
    ranks = {path.name for path in (tmp_path / "out").glob("results.rank*.jsonl")}
    assert ranks == {"results.rank0.jsonl", "results.rank1.jsonl"}
    with Studio(settings) as studio:
        assert len(studio.store.list_generations(LOCAL_USER)) == 6
