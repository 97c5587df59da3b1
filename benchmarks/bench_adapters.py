"""IP-Adapter cost: a cached character and a style reference, over plain generation.

    python benchmarks/bench_adapters.py            # tiny, then the full-size SD-Turbo architecture
    python benchmarks/bench_adapters.py --quick    # tiny only
    python benchmarks/bench_adapters.py --smoke    # tiny, one run per candidate (CI)
    python benchmarks/bench_adapters.py --work DIR # keep/reuse the built models in DIR
    python benchmarks/bench_adapters.py --threads 1 --runs 5   # steadiest on a shared CPU

For each model it times, side by side in one run (interleaved medians), one generation with
the same seed, prompt and size as:

* ``plain``        the pipeline with no IP-Adapter at all (the base model as loaded);
* ``adapters-off`` both adapters loaded, scales 0, zero embeddings: what a plain request costs
  once a character or style has been used (adapters stay loaded);
* ``character``    a saved character: embeddings read back from bytes (no encoder pass),
  ``prepare_ip_embeds`` + ``set_scales`` + the pipeline call (target <= 1.15x plain);
* ``style``        a one-off style reference: ``embed_images`` (one encoder pass) each time,
  style-only scales, the pipeline call;
* ``both``         style reference + cached character together.

The full-size model is SD-Turbo's architecture (SD 2.1, cross-attention 1024) with random
weights, given random IP-Adapters for that UNet by ``build_tiny_adapters`` (tiny image
encoder). Since a real style reference runs a ViT-H encoder, the time of one random ViT-H-size
encoder pass is measured too and its share of a plain generation printed.

Three measures per candidate: wall time and this process's CPU time (medians of interleaved
runs; ``--threads 1`` makes CPU time the steadiest on a shared machine), and the matmul /
conv / attention FLOPs of one call (``torch.utils.flop_counter``), which no noise can move.

"No adapter" and "adapters loaded" run on the same UNet: its attention processors and image
projection are swapped between candidates outside the timed region, so one copy of the
weights serves both.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import build_sd_turbo_architecture  # noqa: E402

PROMPT = "a lighthouse at dawn"


def interleaved_with_setup(
    runs: int, candidates: dict[str, tuple[Callable[[], None], Callable[[], object]]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each candidate's call, run alternately; setups untimed.

    CPU time (this process, all threads) is the steadier figure on a shared machine: another
    tenant's load stretches wall time but not the work done here.
    """
    wall: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, (setup, call) in candidates.items():
            setup()
            started, started_cpu = time.perf_counter(), time.process_time()
            call()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return (
        {name: statistics.median(values) for name, values in wall.items()},
        {name: statistics.median(values) for name, values in cpu.items()},
    )


class UNetState:
    """The UNet's IP-Adapter wiring, captured so it can be put back (not timed)."""

    def __init__(self, unet):
        self.unet = unet
        self.processors = dict(unet.attn_processors)
        self.projection = unet.encoder_hid_proj
        self.hid_type = unet.config.encoder_hid_dim_type

    def apply(self) -> None:
        # Projection first: the plus adapter's Resampler has attention processors of its own.
        self.unet.encoder_hid_proj = self.projection
        self.unet.config.encoder_hid_dim_type = self.hid_type
        self.unet.set_attn_processor(dict(self.processors))


def picture(seed: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))


def measure(loaded, size: int, steps: int, runs: int) -> tuple[dict, dict, dict]:
    import torch

    from gempix.engine import adapters

    pipe = loaded.pipe

    def call(embeds=None):
        extra = {} if embeds is None else {"ip_adapter_image_embeds": embeds}
        with torch.inference_mode():
            pipe(
                prompt=PROMPT,
                num_inference_steps=steps,
                guidance_scale=0.0,
                width=size,
                height=size,
                generator=[torch.Generator("cpu").manual_seed(1)],
                **extra,
            )

    bare = UNetState(pipe.unet)
    adapters.ensure_adapters(loaded, ("style", "character"))
    wired = UNetState(pipe.unet)
    stored = adapters.embeddings_to_bytes(
        adapters.embed_images(loaded, [picture(1), picture(2), picture(3)])
    )
    style_image = picture(4)

    def plain():
        call()

    def off():
        adapters.set_scales(loaded)
        call(adapters.prepare_ip_embeds(loaded))

    def character():
        saved = adapters.embeddings_from_bytes(stored)
        adapters.set_scales(loaded, character=0.8)
        call(adapters.prepare_ip_embeds(loaded, character=saved))

    def style():
        reference = adapters.embed_images(loaded, [style_image])
        adapters.set_scales(loaded, style=0.8)
        call(adapters.prepare_ip_embeds(loaded, style=reference))

    def both():
        saved = adapters.embeddings_from_bytes(stored)
        reference = adapters.embed_images(loaded, [style_image])
        adapters.set_scales(loaded, style=0.8, character=0.8)
        call(adapters.prepare_ip_embeds(loaded, style=reference, character=saved))

    candidates = {
        "plain": (bare.apply, plain),
        "adapters-off": (wired.apply, off),
        "character": (wired.apply, character),
        "style": (wired.apply, style),
        "both": (wired.apply, both),
    }
    flops = {}
    for name, (setup, run) in candidates.items():  # warm every path once, counting its FLOPs
        setup()
        flops[name] = count_flops(run)
    wall, cpu = interleaved_with_setup(runs, candidates)
    return wall, cpu, flops


def count_flops(call: Callable[[], object]) -> int:
    """Matmul/conv/attention FLOPs of one call: the noise-free side of the comparison."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    # torch counts the CUDA attention kernels only; CPU runs this one.
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        call()
    return counter.get_total_flops()


def vit_h_encoder(runs: int = 3) -> tuple[float, int]:
    """One forward of a random ViT-H/14 image encoder (the published IP-Adapters' encoder)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=1280,
            intermediate_size=5120,
            num_attention_heads=16,
            num_hidden_layers=32,
            image_size=224,
            patch_size=14,
            projection_dim=1024,
            hidden_act="gelu",
        )
    ).eval()
    pixels = torch.randn(1, 3, 224, 224)
    times = []
    with torch.inference_mode():
        encoder(pixels, output_hidden_states=True)
        for _ in range(runs):
            started = time.perf_counter()
            encoder(pixels, output_hidden_states=True)
            times.append(time.perf_counter() - started)
        flops = count_flops(lambda: encoder(pixels, output_hidden_states=True))
    return statistics.median(times), flops


def load(work: Path, model: str):
    from gempix.engine.models import ModelManager
    from gempix.settings import Settings

    return ModelManager(Settings.load({}, data_dir=str(work), model=model)).get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny only")
    parser.add_argument("--runs", type=int, default=0, help="runs per candidate")
    parser.add_argument("--work", type=Path, default=None, help="build/reuse models here")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--smoke", action="store_true", help="tiny, one run (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.quick, args.runs = True, 1
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from gempix.engine.tiny import ensure_tiny
    from gempix.engine.tiny_adapters import ensure_tiny_adapters

    work = args.work or Path(tempfile.mkdtemp(prefix="gempix-bench-adapters-"))
    work.mkdir(parents=True, exist_ok=True)
    ensure_tiny_adapters(ensure_tiny(work / "models" / "tiny"))
    cases = [("tiny 64px 2 steps", "tiny", 64, 2, args.runs or 30)]
    if not args.quick:
        print("building the full-size SD-Turbo-architecture model (random weights)...", flush=True)
        folder = build_sd_turbo_architecture(work / "sd-turbo-arch")
        ensure_tiny_adapters(folder)
        cases.append(("sd-turbo-arch 512px 1 step", str(folder), 512, 1, args.runs or 3))

    names = ("plain", "adapters-off", "character", "style", "both")
    rows = []
    for label, model, size, steps, runs in cases:
        print(f"timing {label} ({runs} interleaved runs)...", flush=True)
        loaded = load(work, model)
        rows.append((label, *measure(loaded, size, steps, runs)))
        del loaded
    vit_h = None if args.quick else vit_h_encoder()

    def table(title: str, column: int, cell: Callable[[dict, str], str]) -> None:
        print(f"\n{title:<28}" + "".join(f"{name:>14}" for name in names))
        for row in rows:
            print(f"{row[0]:<28}" + "".join(f"{cell(row[column], name):>14}" for name in names))

    table("wall ms (median)", 1, lambda t, n: f"{t[n] * 1000:.1f}")
    table("wall ratio over plain", 1, lambda t, n: f"{t[n] / t['plain']:.3f}")
    table("CPU ms (median)", 2, lambda t, n: f"{t[n] * 1000:.1f}")
    table("CPU ratio over plain", 2, lambda t, n: f"{t[n] / t['plain']:.3f}")
    table("GFLOPs (one call)", 3, lambda f, n: f"{f[n] / 1e9:.2f}")
    table("FLOP ratio over plain", 3, lambda f, n: f"{f[n] / f['plain']:.4f}")
    if vit_h is not None:
        seconds, flops = vit_h
        plain_s, plain_flops = rows[-1][1]["plain"], rows[-1][3]["plain"]
        print(
            f"\nA random ViT-H/14 encoder pass (what a real style reference adds per generation):"
            f" {seconds * 1000:.0f} ms = {seconds / plain_s:.3f}x the time and"
            f" {flops / plain_flops:.4f}x the FLOPs of a plain full-size generation."
        )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
