"""Several queued requests of the same shape in one pipeline call.

A GPU runs a batch of four 512 px images in much less than four times one image's time, so
when the queue holds several text-to-image plans that agree on everything the pipeline call
depends on (size, steps, guidance, whether a negative prompt is given), they are rendered
together: prompts, negative prompts and one CPU generator per image (seeded as in
``generate.run``) are concatenated, and the images are split back per plan. Each image's
initial noise comes from its own seed, so it matches a single run up to float rounding.

Not batched: image-to-image plans, plans that alone exceed ``max_batch`` images, and every
plan while an IP-Adapter is loaded (its image embeddings are per call), and every plan of a
model that edits an input image (Qwen-Image-Edit refuses several prompts in one call); they run
alone through ``generate.run``. Batched calls show no live previews: a preview strip would show one
person's images to another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .calls import call_kwargs
from .generate import Progress, announce_compile, run, step_callback, upscale_all
from .models import LoadedModel
from .pipeline import call_pipeline
from .request import Plan
from .upscale import Upscaler


def batch_key(plan: Plan) -> tuple | None:
    """What a pipeline call depends on; None for plans that never share a call."""
    if plan.init_image is not None:
        return None
    return (plan.width, plan.height, plan.steps, plan.guidance, bool(plan.negative_prompt))


def group(plans: Sequence[Plan], max_batch: int) -> list[list[int]]:
    """Indices of ``plans`` grouped for one call each: same key, at most ``max_batch`` images.

    Greedy and order-keeping: a group starts at the first plan not yet taken and gathers
    later plans with the same key while they fit, so no request waits behind one queued
    after it of another shape for more than one call.
    """
    taken: set[int] = set()
    groups: list[list[int]] = []
    for first, plan in enumerate(plans):
        if first in taken:
            continue
        taken.add(first)
        members, images = [first], plan.num_images
        key = batch_key(plan)
        if key is not None:
            for other in range(first + 1, len(plans)):
                candidate = plans[other]
                if other in taken or batch_key(candidate) != key:
                    continue
                if images + candidate.num_images > max_batch:
                    continue
                members.append(other)
                images += candidate.num_images
                taken.add(other)
        groups.append(members)
    return groups


def _render_group(loaded: LoadedModel, plans: Sequence[Plan], progress: Progress | None):
    import torch

    first = plans[0]
    prompts, negatives, generators, counts = [], [], [], []
    for plan in plans:
        prompts += [plan.prompt] * plan.num_images
        negatives += [plan.negative_prompt] * plan.num_images
        generators += [torch.Generator("cpu").manual_seed(seed) for seed in plan.seeds]
        counts.append(plan.num_images)
    kwargs = call_kwargs(
        loaded.preset,
        prompt=prompts,
        negative_prompt=negatives if first.negative_prompt else None,
        steps=first.steps,
        guidance=first.guidance,
        width=first.width,
        height=first.height,
        generator=generators,
    )
    kwargs["callback_on_step_end"] = step_callback(loaded, progress, None)
    with loaded.lock, torch.inference_mode():
        announce_compile(loaded, first, progress, images=len(prompts))
        images = call_pipeline(loaded.pipe, kwargs)
    split, start = [], 0
    for count in counts:
        split.append(images[start : start + count])
        start += count
    return split


def run_batched(
    loaded: LoadedModel,
    plans: Sequence[Plan],
    max_batch: int = 4,
    progress: Callable[[int], Progress | None] | None = None,
    upscaler: Upscaler | None = None,
) -> list[list]:
    """Images for every plan, in order, rendering same-shape plans together.

    ``progress(i)`` gives plan i's progress callback (or None); a batched call reports its
    steps to every plan in it. A plan alone in its group goes through ``generate.run``; the
    upscaling of batched plans is ``generate.run``'s, per plan, afterwards.
    """
    results: list[list] = [[] for _ in plans]
    if loaded.adapters is not None or loaded.preset.needs_image:
        max_batch = 1  # per-call embeddings; Qwen-Image-Edit takes one prompt per call
    for members in group(plans, max_batch):
        callbacks = [progress(i) if progress else None for i in members]
        if len(members) == 1:
            results[members[0]] = run(loaded, plans[members[0]], callbacks[0], upscaler)
            continue

        def fan_out(done, total, stage, callbacks=callbacks):
            for callback in callbacks:
                if callback is not None:
                    callback(done, total, stage)

        rendered = _render_group(loaded, [plans[i] for i in members], fan_out)
        for index, images, callback in zip(members, rendered, callbacks, strict=True):
            results[index] = upscale_all(loaded, plans[index], images, callback, upscaler)
    return results
