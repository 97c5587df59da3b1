"""Service overhead over the bare diffusers call, cold-start time and peak memory.

    python benchmarks/bench_generate.py            # tiny and full-size SD-Turbo architecture
    python benchmarks/bench_generate.py --quick    # tiny only

For each model it times, side by side in one run, (a) the bare pipeline call on the loaded
pipeline and (b) ``Studio.generate`` (validation, pipeline, metadata, PNG write) with the same
inputs, and prints the ratio b/a (target <= 1.05). Then it times a cold ``gempix generate``
in a fresh process and reports that process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import build_sd_turbo_architecture, interleaved  # noqa: E402


def overhead(settings, size: int, steps: int, runs: int) -> dict[str, float]:
    import torch

    from gempix.engine.request import GenerationRequest
    from gempix.service import Studio

    studio = Studio(settings)
    loaded = studio.model()
    request = GenerationRequest(
        "a lighthouse at dawn", seed=1, steps=steps, width=size, height=size, guidance=0.0
    )

    def bare():
        loaded.pipe(
            prompt=request.prompt,
            num_inference_steps=steps,
            guidance_scale=0.0,
            width=size,
            height=size,
            generator=[torch.Generator("cpu").manual_seed(1)],
        )

    def service():
        studio.generate(request)

    service()  # warm both paths once (first call pays lazy init)
    bare()
    return interleaved(runs, bare=bare, service=service)


def cold_start(data_dir: Path, model: str, size: int, steps: int) -> tuple[float, float]:
    """Seconds from process start to first image written, and that process's peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gempix",
            "generate",
            "a lighthouse",
            "--model",
            model,
            "--data-dir",
            str(data_dir),
            "--size",
            f"{size}x{size}",
            "--steps",
            str(steps),
            "--guidance",
            "0",
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny only")
    parser.add_argument("--runs", type=int, default=0, help="runs per candidate")
    args = parser.parse_args()

    from gempix.engine.tiny import ensure_tiny
    from gempix.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="gempix-bench-"))
    ensure_tiny(work / "models" / "tiny")
    rows = []
    cases = [("tiny", "tiny", 64, 2, args.runs or 30)]
    if not args.quick:
        print("building the full-size SD-Turbo-architecture model (random weights)...", flush=True)
        folder = build_sd_turbo_architecture(work / "sd-turbo-arch")
        cases.append(("sd-turbo-arch 512px 1 step", str(folder), 512, 1, args.runs or 3))
    for label, model, size, steps, runs in cases:
        settings = Settings.load({}, data_dir=str(work), model=model)
        times = overhead(settings, size, steps, runs)
        cold, rss = cold_start(work, model, size, steps)
        rows.append((label, times["bare"], times["service"], cold, rss))

    print(
        f"\n{'model':<28}{'bare ms':>10}{'service ms':>12}{'ratio':>8}"
        f"{'cold first image s':>20}{'peak RSS MiB':>14}"
    )
    for label, bare, service, cold, rss in rows:
        print(
            f"{label:<28}{bare * 1000:>10.1f}{service * 1000:>12.1f}{service / bare:>8.3f}"
            f"{cold:>20.1f}{rss:>14.0f}"
        )


if __name__ == "__main__":
    main()
