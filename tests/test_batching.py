"""Same-shape plans rendered in one pipeline call, each image matching its single run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from gempix.engine.batching import batch_key, group, run_batched
from gempix.engine.generate import run
from gempix.engine.models import ModelManager
from gempix.engine.pipeline import call_pipeline
from gempix.engine.presets import PRESETS
from gempix.engine.request import GenerationRequest, plan
from gempix.settings import Settings

TINY = PRESETS["tiny"]


def make(prompt="a red fox", **fields):
    fields.setdefault("seed", 1)
    fields.setdefault("steps", 2)
    return plan(GenerationRequest(prompt, **fields), TINY)


def test_grouping_keeps_order_shape_and_the_batch_limit():
    plans = [
        make(seed=1),  # 0
        make(seed=2, steps=1),  # 1: other steps
        make(seed=3, num_images=2),  # 2
        make(seed=4, width=128, height=64),  # 3: other size
        make(seed=5, negative_prompt="blur"),  # 4: negative prompt given
        make(seed=6),  # 5: would make 4 images with 0 and 2
        make(seed=7),  # 6: over the limit of 4 -> next group
        make(seed=8, init_image=Image.new("RGB", (64, 64)), strength=0.5),  # 7: img2img
        make(seed=9, steps=1),  # 8: joins 1
    ]
    assert batch_key(plans[7]) is None
    assert group(plans, max_batch=4) == [[0, 2, 5], [1, 8], [3], [4], [6], [7]]
    assert group(plans, max_batch=1) == [[i] for i in range(len(plans))]
    assert group([make(num_images=6), make()], max_batch=4) == [[0], [1]]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, tiny_folder):
    data = tmp_path_factory.mktemp("batch-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    return ModelManager(Settings.load({}, data_dir=str(data), model="tiny")).get()


def test_batched_images_match_single_runs(loaded):
    """Bound: each batched image within 2/255 per channel of its single run (a batch changes
    float reduction order, not the noise: each image keeps its own seeded generator)."""
    plans = [
        make("a red fox", seed=11),
        make("a lighthouse at dawn", seed=12, num_images=2, resolution="2k", upscaler="lanczos"),
        make("a blue car", seed=13, steps=1),  # another shape: rendered alone
    ]
    calls = {i: [] for i in range(3)}
    batched = run_batched(
        loaded,
        plans,
        max_batch=4,
        progress=lambda i: lambda d, t, s: s == "denoise" and calls[i].append(d),
    )
    assert [len(images) for images in batched] == [1, 2, 1]
    assert batched[1][0].size == plans[1].target != (64, 64)  # upscaled after the batch
    assert calls == {0: [1, 2], 1: [1, 2], 2: [1]}
    for index, single_plan in enumerate(plans):
        alone = run(loaded, single_plan)
        for got, want in zip(batched[index], alone, strict=True):
            difference = np.abs(np.asarray(got).astype(int) - np.asarray(want).astype(int))
            assert difference.max() <= 2, f"plan {index} differs from its single run"
    # different prompts really produced different images (the batch was not one prompt)
    assert not np.array_equal(np.asarray(batched[0][0]), np.asarray(batched[1][0]))


def test_the_batch_runner_shares_calls_and_draws_the_single_run_images(
    settings, tmp_path, monkeypatch
):
    """Five lines: three of one shape, one of another, one invalid. With GEMPIX_MAX_BATCH 4
    the three share one pipeline call (3 images, though not adjacent), the other runs alone,
    the invalid one fails alone. Bound: each image within 2/255 per channel of the same line
    rendered by itself."""
    import dataclasses
    import json

    from gempix.batch import results, run_batch
    from gempix.engine import batching, generate
    from gempix.service import Studio

    lines = [
        {"prompt": "a red fox", "seed": 1},
        {"prompt": "a lighthouse", "seed": 2},
        {"prompt": "a wide street", "seed": 3, "width": 128, "height": 64},
        {"prompt": "   "},
        {"prompt": "a blue car", "seed": 4},
    ]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    images_per_call = []

    def counting(pipe, kwargs):
        prompt = kwargs["prompt"]
        images_per_call.append(len(prompt) if isinstance(prompt, list) else 1)
        return call_pipeline(pipe, kwargs)

    for module in (batching, generate):
        monkeypatch.setattr(module, "call_pipeline", counting)
    summary = run_batch(
        dataclasses.replace(settings, max_batch=4), prompts, tmp_path / "out", show_progress=False
    )
    assert (summary.done, summary.failed) == (4, 1)
    assert sorted(images_per_call) == [1, 3]
    entries = {entry["line"]: entry for entry in results(tmp_path / "out")}
    assert entries[4]["status"] == "error" and "prompt" in entries[4]["error"]

    alone = Studio(settings)
    for number, fields in enumerate(lines, start=1):
        if number == 4:
            continue
        (image,) = entries[number]["images"]
        single = alone.render(GenerationRequest(**fields)).images[0]
        got = np.asarray(Image.open(image["output"])).astype(int)
        want = np.asarray(Image.open(single.path)).astype(int)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 2, f"line {number} differs from its single run"
        assert image["seed"] == fields["seed"]
