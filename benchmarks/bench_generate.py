"""Service overhead over the bare diffusers call, cold-start time and peak memory.

    python benchmarks/bench_generate.py            # tiny and full-size SD-Turbo architecture
    python benchmarks/bench_generate.py --quick    # tiny only
    python benchmarks/bench_generate.py --smoke    # one tiny run of each measurement (CI)

The tiny builds of the current families (``tiny-flux2-klein``, ``tiny-z-image``,
``tiny-qwen-image-edit``) are measured the same way in every mode, without the cold start
(the family's bare call gets the family's own arguments, ``engine/calls.call_kwargs``).

For each model it times, side by side in one run, (a) the bare pipeline call on the loaded
pipeline and (b) ``Studio.generate`` (validation, pipeline, metadata, PNG write) with the same
inputs, and prints the ratio b/a (target <= 1.05). Because whole-call ratios of a 40 s CPU
call are noisy on a shared machine, it also times what the service adds around the pipeline
on its own ("added ms") and prints (bare + added) / bare. Then it times a cold
``gempix generate`` in a fresh process and reports that process's peak RSS. The studio of
the first two measurements is closed first: the child opens the same data dir, and only one
process may hold its database.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import build_sd_turbo_architecture, interleaved  # noqa: E402


def overhead(studio, size: int, steps: int, runs: int) -> dict[str, float]:
    import torch

    from gempix.engine.calls import call_kwargs
    from gempix.params import GenerationRequest

    loaded = studio.model()
    request = GenerationRequest(
        "a lighthouse at dawn", seed=1, steps=steps, width=size, height=size, guidance=0.0
    )

    def bare():
        loaded.pipe(
            **call_kwargs(
                loaded.preset,
                prompt=request.prompt,
                negative_prompt=None,
                steps=steps,
                guidance=0.0,
                width=size,
                height=size,
                generator=[torch.Generator("cpu").manual_seed(1)],
            )
        )

    def service():
        studio.generate(request)

    service()  # warm both paths once (first call pays lazy init)
    bare()
    return interleaved(runs, bare=bare, service=service)


def direct_overhead(studio, size: int, work: Path, runs: int = 20) -> float:
    """Median ms the service adds around the pipeline for one image of this size: validation,
    prompt check, metadata and PNG write. Stable where whole-call ratios drown in noise.
    """
    from PIL import Image

    from gempix.engine.generate import prompt_warnings
    from gempix.engine.request import plan
    from gempix.metadata import save_png
    from gempix.params import GenerationRequest

    loaded = studio.model()
    request = GenerationRequest("a lighthouse at dawn", seed=1, width=size, height=size)
    picture = Image.new("RGB", (size, size), "gray")
    target = work / "overhead.png"

    def around_pipeline():
        resolved = plan(request, loaded.preset)
        prompt_warnings(loaded, resolved)
        save_png(picture, target, {"prompt": request.prompt, "seed": 1}, include_prompt=True)

    return interleaved(runs, overhead=around_pipeline)["overhead"] * 1000


def cold_start(data_dir: Path, model: str, size: int, steps: int) -> tuple[float, float]:
    """Seconds from process start to first image written, and that process's peak RSS (MiB)."""
    command = [sys.executable, "-m", "gempix", "generate", "a lighthouse", "--model", model]
    command += ["--data-dir", str(data_dir), "--size", f"{size}x{size}", "--steps", str(steps)]
    log = data_dir / "cold-start.log"
    with open(log, "wb") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, no other's
        elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"cold start of {model} failed:\n" + "\n".join(tail))
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny only")
    parser.add_argument("--smoke", action="store_true", help="tiny, one run each (seconds)")
    parser.add_argument("--runs", type=int, default=0, help="runs per candidate")
    args = parser.parse_args()

    from gempix.engine.families import build_tiny_family
    from gempix.engine.presets import TINY_FAMILY_NAMES
    from gempix.engine.tiny import ensure_tiny
    from gempix.service import Studio
    from gempix.settings import Settings

    runs = 1 if args.smoke else args.runs
    with tempfile.TemporaryDirectory(prefix="gempix-bench-") as temporary:
        work = Path(temporary)
        ensure_tiny(work / "models" / "tiny")
        rows = []
        cases = [("tiny", "tiny", 64, 2, runs or 30)]
        families = []
        for family, preset in TINY_FAMILY_NAMES.items():
            build_tiny_family(family, work / "models" / preset)
            families.append((preset, preset, 64, 2, runs or 10))
        if not (args.quick or args.smoke):
            print(
                "building the full-size SD-Turbo-architecture model (random weights)...", flush=True
            )
            arch = build_sd_turbo_architecture(work / "sd-turbo-arch")
            cases.append(("sd-turbo-arch 512px 1 step", str(arch), 512, 1, runs or 3))
        for label, model, size, steps, count in cases + families:
            with Studio(Settings.load({}, data_dir=str(work), model=model)) as studio:
                times = overhead(studio, size, steps, count)
                added = direct_overhead(studio, size, work, 2 if args.smoke else 20)
            cold = rss = None
            if (label, model, size, steps, count) in cases:
                cold, rss = cold_start(work, model, size, steps)
            rows.append((label, times["bare"] * 1000, times["service"] * 1000, added, cold, rss))

    header = (
        "model",
        "bare ms",
        "service ms",
        "ratio",
        "added ms",
        "(bare+added)/bare",
        "cold 1st image s",
        "peak RSS MiB",
    )
    print("\n" + " | ".join(header))
    for label, bare, service, added, cold, rss in rows:
        cold_text = "-" if cold is None else f"{cold:.1f}"
        rss_text = "-" if rss is None else f"{rss:.0f}"
        print(
            f"{label} | {bare:.1f} | {service:.1f} | {service / bare:.3f} | {added:.2f} | "
            f"{(bare + added) / bare:.4f} | {cold_text} | {rss_text}"
        )


if __name__ == "__main__":
    main()
