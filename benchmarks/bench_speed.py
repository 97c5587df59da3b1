"""Memory modes side by side with plain diffusers: latency, throughput, peak memory, previews.

    python benchmarks/bench_speed.py --quick        # tiny only (seconds)
    python benchmarks/bench_speed.py                # CPU: tiny + SD-Turbo architecture 512 px
                                                    # CUDA: tiny + SDXL-Turbo architecture 512 px
    python benchmarks/bench_speed.py --compile      # adds a "high+compile" candidate
    python benchmarks/bench_speed.py --smoke        # tiny, one process, one run of each (CI)

Every candidate runs on the same model folder, size, steps and seeds: ``plain`` is
``DiffusionPipeline.from_pretrained(...).to(device)`` called as is; ``high``/``balanced``/``low``
load the same way, then go through GemPix's hooks (``apply_mode``, ``fast_paths``,
``call_pipeline``). When memory allows, each candidate has its own worker process (its own
peak host RSS and peak device memory, ``torch.cuda.max_memory_allocated``), all stay loaded
and the parent interleaves their runs, so noise on a shared machine hits all alike. A
full-size model on a small CPU box cannot be loaded four times: there the candidates take
turns on one pipeline in one process (on a CPU no mode moves weights, so modes are
reversible switches), still interleaved, with one shared RSS figure. On a GPU that cannot
hold them all, they run one after another. The table names its layout.

Columns: median latency per image at batch 1; images/s at batch 1 and at batch 4; peak device
memory; peak host RSS; latency relative to plain diffusers. Then live previews: the tiny
autoencoder's decode time per step against the denoiser's step time (target <= 10 %), and the
end-to-end overhead of a generation with previews on. Full-size models use random weights
(architecture only; nothing is downloaded), the preview decoder a random full-size TAESD.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import build_sd_turbo_architecture  # noqa: E402

MODES = ("high", "balanced", "low")
PROMPT = "a lighthouse at dawn"
MiB = 1024**2


# --------------------------------------------------------------------------------------------
# Models


def build_sdxl_turbo_architecture(folder: Path, device: str = "cpu", small: bool = False) -> Path:
    """SDXL-Turbo's architecture (UNet 2.6B, CLIP-L + OpenCLIP-bigG, SDXL VAE), random weights,
    saved in float16 (float32 on a CPU). ``small`` shrinks every width (a CPU smoke test of
    this code path). Built on ``device`` (seconds on a GPU), loaded via ``from_pretrained``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
    )

    from gempix.engine.tiny import build_tokenizer

    if (folder / "model_index.json").is_file():
        return folder
    k = 8 if small else 1  # width divisor
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=64,
            block_out_channels=(320 // k, 640 // k, 1280 // k),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10 // k or 1),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048 // k,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256 // k,
            projection_class_embeddings_input_dim=256 // k * 6 + 1280 // k,
            norm_num_groups=32 // k if small else 32,
        )
        vae = AutoencoderKL(
            block_out_channels=(128 // k, 256 // k, 512 // k, 512 // k),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=1024,
            scaling_factor=0.13025,
            norm_num_groups=32 // k if small else 32,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=768 // k,
                intermediate_size=3072 // k,
                num_attention_heads=12,
                num_hidden_layers=12 // k or 1,
                projection_dim=768 // k,
                hidden_act="quick_gelu",
                vocab_size=len(tokenizer),
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        text_encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig(
                hidden_size=1280 // k,
                intermediate_size=5120 // k,
                num_attention_heads=20,
                num_hidden_layers=32 // k,
                projection_dim=1280 // k,
                hidden_act="gelu",
                vocab_size=len(tokenizer),
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    if device != "cpu":
        pipe.to(torch.float16).to("cpu")  # built fast on the GPU, saved from host memory
    pipe.save_pretrained(folder, safe_serialization=True)
    del pipe
    if device != "cpu":
        torch.cuda.empty_cache()
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))


# --------------------------------------------------------------------------------------------
# Worker: one candidate, one process, commands on stdin, JSON answers on stdout


def worker(config: dict) -> None:
    import torch

    from gempix.engine import fastpaths, memory, pipeline, previews, runtime
    from gempix.engine.models import quiet_libraries

    answer_to = sys.stdout
    sys.stdout = sys.stderr  # libraries' prints must not corrupt the protocol
    quiet_libraries()
    device, candidate = config["device"], config["candidate"]
    dtype = getattr(torch, config["dtype"])
    started = time.perf_counter()
    from diffusers import AutoencoderTiny, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(config["folder"], dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    report = []
    current = {"as": candidate}
    if candidate == "plain":
        pipe.to(device)
    elif candidate == "shared":  # CPU only: every candidate takes turns on one pipeline
        runtime.configure_threads()
        paths = fastpaths.fast_paths(pipe, device)
        report = paths.applied + [f"skipped {line}" for line in paths.skipped]
    else:
        mode = candidate.split("+")[0]
        if device == "cpu":
            runtime.configure_threads()
        memory.apply_mode(pipe, mode, device)
        paths = fastpaths.fast_paths(pipe, device, compile="+compile" in candidate)
        report = paths.applied + [f"skipped {line}" for line in paths.skipped]
    load_s = time.perf_counter() - started

    def become(name: str) -> None:
        """Shared worker: switch to candidate ``name``. On a CPU no mode moves weights, so
        modes are reversible switches: VAE tiling/slicing and attention slicing."""
        if current["as"] == name:
            return
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()
        pipe.disable_attention_slicing()  # back to diffusers' default (SDPA) processors
        if name != "plain":
            memory.apply_mode(pipe, name, device)
        current["as"] = name

    decoder = None
    if config.get("previews"):
        if config["tiny"]:
            source = Path(config["folder"]) / previews.TINY_TAESD_FOLDER
            taesd = AutoencoderTiny.from_pretrained(source, dtype=dtype)
        else:
            torch.manual_seed(0)
            taesd = AutoencoderTiny().to(dtype)  # TAESD's architecture, random weights
        decoder = previews.PreviewDecoder(vae=taesd.to(device))

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step_times: list[float] = []
    timing = {"on": False, "start": 0.0}

    def before(module, args, kwargs):
        if timing["on"]:
            sync()
            timing["start"] = time.perf_counter()

    def after(module, args, kwargs, output):
        if timing["on"]:
            sync()
            step_times.append(time.perf_counter() - timing["start"])

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    denoiser.register_forward_pre_hook(before, with_kwargs=True)
    denoiser.register_forward_hook(after, with_kwargs=True)

    def generate(batch: int, with_previews: bool, time_steps: bool, name: str) -> dict:
        if candidate == "shared":
            become(name)
        kwargs = dict(
            prompt=[PROMPT] * batch,
            num_inference_steps=config["steps"],
            guidance_scale=0.0,
            width=config["size"],
            height=config["size"],
            generator=[torch.Generator("cpu").manual_seed(1 + i) for i in range(batch)],
        )
        if with_previews:
            kwargs["callback_on_step_end"] = previews.preview_callback(
                decoder, lambda step, total, image: None
            )
        step_times.clear()
        seen = len(decoder.seconds) if decoder else 0
        timing["on"] = time_steps
        sync()
        begun = time.perf_counter()
        with torch.inference_mode():
            if current["as"] == "plain":
                images = pipe(**kwargs).images
            else:
                images = pipeline.call_pipeline(pipe, kwargs)
        sync()
        seconds = time.perf_counter() - begun
        timing["on"] = False
        assert len(images) == batch
        return {
            "seconds": seconds,
            "step_s": list(step_times),
            "preview_s": decoder.seconds[seen:] if decoder else [],
        }

    def reply(message: dict) -> None:
        answer_to.write(json.dumps(message) + "\n")
        answer_to.flush()

    reply({"ready": True, "load_s": load_s, "fast_paths": report})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "generate":
            reply(
                generate(
                    command["batch"],
                    command.get("previews", False),
                    command["steps"],
                    command.get("candidate", candidate),
                )
            )
        elif op == "stats":
            device_peak = (
                torch.cuda.max_memory_allocated() / MiB if device.startswith("cuda") else None
            )
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            mode = memory.current_mode(pipe) if current["as"] != "plain" else "-"
            reply({"rss_mib": rss, "device_peak_mib": device_peak, "mode": mode})
        elif op == "quit":
            reply({"bye": True})
            return


class Worker:
    def __init__(self, config: dict, log: Path):
        self.name = config["candidate"]
        self.log = open(log, "ab")  # noqa: SIM115 (closed in quit)
        command = [sys.executable, __file__, "--worker", json.dumps(config)]
        # Idle workers must not spin: OpenMP's default busy-wait after each op would steal
        # the cores from whichever worker runs next (the same setting for every candidate).
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        self.ready = self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self.log.flush()
            tail = Path(self.log.name).read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(
                f"worker {self.name} died (exit {code}); see {self.log.name}:\n" + "\n".join(tail)
            )
        return json.loads(line)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def quit(self) -> dict:
        stats = self.ask(op="stats")
        self.ask(op="quit")
        self.process.wait(timeout=60)
        self.log.close()
        return stats


# --------------------------------------------------------------------------------------------
# Parent: schedule, measure, print


def measure(slots: list[tuple[str, Worker]], args, budget_end: float) -> dict:
    """Interleaved runs over (candidate, loaded worker) slots; returns samples per candidate."""
    samples = {name: {"b1": [], "b4": []} for name, _ in slots}

    def once(name: str, w: Worker, batch: int) -> float:
        return w.ask(op="generate", candidate=name, batch=batch, steps=False)["seconds"]

    if args.warm:  # first calls pay lazy initialisation (and compiles): timed apart
        for name, w in slots:
            samples[name]["first_s"] = once(name, w, 1)
            if args.runs4:
                once(name, w, 4)
    for batch, key, count in ((1, "b1", args.runs), (4, "b4", args.runs4)):
        for run in range(count):
            if run >= 1 and time.monotonic() > budget_end:
                print(f"  time budget reached: {run} run(s) at batch {batch}", flush=True)
                break
            turn = run % len(slots)  # rotate who goes first: no candidate always follows
            for name, w in slots[turn:] + slots[:turn]:  # the same neighbour
                seconds = once(name, w, batch)
                samples[name][key].append(seconds)
                samples[name].setdefault("first_s", seconds)
    return samples


def measure_previews(worker: Worker, runs: int) -> dict:
    without, with_, steps, decodes = [], [], [], []
    for _ in range(runs):
        ask = dict(op="generate", candidate="high", batch=1, steps=True)
        plain = worker.ask(**ask, previews=False)
        shown = worker.ask(**ask, previews=True)
        without.append(plain["seconds"])
        with_.append(shown["seconds"])
        steps += plain["step_s"] + shown["step_s"]
        decodes += shown["preview_s"]
    step = statistics.median(steps)
    decode = statistics.median(decodes)
    return {
        "step_ms": step * 1000,
        "preview_ms": decode * 1000,
        "per_step_pct": 100 * decode / step,
        "end_to_end_pct": 100 * (statistics.median(with_) / statistics.median(without) - 1),
    }


def run_model(label: str, config: dict, candidates: list[str], args, work: Path) -> tuple:
    """Measure every candidate on one model. Layouts, by what memory allows:
    "separate" (a process per candidate, all loaded, runs interleaved), "shared" (CPU: one
    process, the candidates take turns on one pipeline, runs interleaved; compile apart), or
    "sequential" (a process per candidate, one after another)."""
    import torch

    print(
        f"\n== {label}: {config['size']} px, {config['steps']} step(s), {config['dtype']}, "
        f"{config['device']}",
        flush=True,
    )
    weights = folder_bytes(Path(config["folder"]))
    if args.layout != "auto":
        layout = args.layout
    elif fits_concurrently(weights, candidates, config["device"]):
        layout = "separate"
    elif config["device"] == "cpu":
        layout = "shared"
    else:
        layout = "sequential"
    print(f"   weights {weights / MiB:.0f} MiB; layout: {LAYOUTS[layout]}", flush=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, previews: bool) -> Worker:
        cfg = {**config, "candidate": name, "previews": previews}
        return Worker(cfg, logs / f"{label.split()[0]}-{name}.log")

    samples, stats, ready, preview = {}, {}, {}, None
    if layout == "shared":
        together = [name for name in candidates if "+compile" not in name]
        groups = [("shared", together)] + [(n, [n]) for n in candidates if n not in together]
    elif layout == "separate":
        groups = [(None, candidates)]
    else:
        groups = [(n, [n]) for n in candidates]
    for process, names in groups:
        if process is None:
            slots = [(name, start(name, name == "high")) for name in names]
        else:
            shared = start(process, "high" in names)
            slots = [(name, shared) for name in names]
        budget_end = time.monotonic() + args.budget_s * len(names)  # per candidate
        for name, w in slots:
            ready[name] = w.ready
        samples.update(measure(slots, args, budget_end))
        for name, w in slots:
            if name == "high":
                preview = measure_previews(w, args.preview_runs)
        for w in {id(w): w for _, w in slots}.values():
            answer = w.quit()
            for name, owner in slots:
                if owner is w:
                    stats[name] = {**answer, "mode": "-" if name == "plain" else name}
        if config["device"].startswith("cuda"):
            torch.cuda.empty_cache()
    return label, layout, samples, stats, ready, preview


LAYOUTS = {
    "separate": "a process per candidate, all loaded, runs interleaved",
    "shared": "one process, candidates take turns on one pipeline (CPU: modes are switches), "
    "runs interleaved; peak RSS is the shared process's",
    "sequential": "a process per candidate, one after another (not interleaved)",
}


def fits_concurrently(weights: int, candidates: list[str], device: str) -> bool:
    import psutil
    import torch

    host = psutil.virtual_memory().available
    if device == "cpu":
        return len(candidates) * (weights + 512 * MiB) * 1.3 < host
    free, _ = torch.cuda.mem_get_info()
    resident = sum(1 for name in candidates if not name.startswith(("balanced", "low")))
    return resident * weights * 1.6 + 2 * weights < free and len(candidates) * weights < host


def print_table(label, layout, samples, stats, ready, preview) -> None:
    base = statistics.median(samples["plain"]["b1"])
    print(f"\n### {label} ({layout}: {LAYOUTS[layout]})")
    print(
        "candidate | mode | ms/image b1 (median) | img/s b1 | img/s b4 | first call s | "
        "peak device MiB | peak host RSS MiB | latency vs plain"
    )
    for name, data in samples.items():
        b1 = statistics.median(data["b1"])
        b4 = f"{4 / statistics.median(data['b4']):.2f}" if data["b4"] else "not run"
        device = stats[name]["device_peak_mib"]
        print(
            f"{name} | {stats[name]['mode']} | {b1 * 1000:.1f} (n={len(data['b1'])}) | "
            f"{1 / b1:.2f} | {b4} (n={len(data['b4'])}) | {data['first_s']:.1f} | "
            f"{'-' if device is None else f'{device:.0f}'} | {stats[name]['rss_mib']:.0f} | "
            f"{b1 / base:.3f}"
        )
    reports: dict[tuple, list[str]] = {}
    for name, info in ready.items():
        if info["fast_paths"] and name != "plain":
            reports.setdefault(tuple(info["fast_paths"]), []).append(name)
    for lines, names in reports.items():
        print(f"  fast paths of {', '.join(names)}: {'; '.join(lines)}")
    if preview:
        print(
            f"\nlive previews ({label}, high mode): denoiser step {preview['step_ms']:.1f} ms, "
            f"preview decode {preview['preview_ms']:.1f} ms/step = "
            f"{preview['per_step_pct']:.1f} % of a step (target <= 10 %); "
            f"end-to-end with previews {preview['end_to_end_pct']:+.1f} %"
        )


def auto_advice(folder: Path, device: str, dtype) -> str:
    from diffusers import DiffusionPipeline

    from gempix.engine import memory, runtime

    pipe = DiffusionPipeline.from_pretrained(folder, dtype=dtype)
    needs = memory.estimate_needs(pipe, device=device)
    free = runtime.free_device_bytes(device) + (
        memory._resident_bytes(pipe, device) if device == "cpu" else 0
    )
    mode = memory.advise_mode(free, needs, device)
    del pipe
    return (
        f"auto would pick {mode!r} here: needs high {memory.gib(needs.high)}, balanced "
        f"{memory.gib(needs.balanced)}, low {memory.gib(needs.low)}; "
        f"free {memory.gib(free)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny only")
    parser.add_argument(
        "--models",
        help="comma list: tiny, sd-turbo-arch, sdxl-turbo-arch, sdxl-turbo-arch-small "
        "(default: tiny plus the full-size model of this device)",
    )
    parser.add_argument("--runs", type=int, default=0, help="batch-1 runs per candidate")
    parser.add_argument(
        "--runs4", type=int, default=-1, help="batch-4 runs per candidate (0: none)"
    )
    parser.add_argument(
        "--preview-runs", type=int, default=0, help="pairs of runs with/without previews"
    )
    parser.add_argument("--compile", action="store_true", help="add a high+compile candidate")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="seconds of timed runs per candidate before runs are cut short "
        "(default: 90 on CUDA, 600 on a CPU)",
    )
    parser.add_argument("--work", help="folder for built models (reused between runs)")
    parser.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default="auto",
        help="how candidates share processes (auto: by free memory; shared is CPU only)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny, shared layout, one run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.smoke:  # every code path once: the shared worker, batch 4, previews
        args.quick, args.layout = True, "shared"
        args.runs = args.runs4 = args.preview_runs = 1

    import torch

    from gempix.engine.tiny import ensure_tiny

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gempix-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.models:
        names = args.models.split(",")
    elif args.quick:
        names = ["tiny"]
    else:
        names = ["tiny", "sdxl-turbo-arch" if cuda else "sd-turbo-arch"]
    candidates = ["plain", *MODES] + (["high+compile"] if args.compile else [])
    if args.budget_s is None:
        args.budget_s = 90.0 if cuda else 600.0
    started = time.perf_counter()
    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if cuda else f", {os.cpu_count()} CPUs")
    )
    results = []
    for name in names:
        big = name != "tiny"
        if name == "tiny":
            folder, size, steps, dtype = ensure_tiny(work / "models" / "tiny"), 64, 2, "float32"
        elif name == "sd-turbo-arch":
            print("building the SD-Turbo-architecture model (random weights)...", flush=True)
            folder = build_sd_turbo_architecture(work / "sd-turbo-arch")
            size, steps, dtype = 512, 1, "float16" if cuda else "float32"
        elif name.startswith("sdxl-turbo-arch"):
            small = name.endswith("-small")
            print(f"building the {name} model (random weights)...", flush=True)
            folder = build_sdxl_turbo_architecture(work / name, device, small=small)
            size, steps = (128 if small and not cuda else 512), 1
            dtype = "float16" if cuda else "float32"
        else:
            raise SystemExit(f"unknown model {name!r}")
        # A full-size model on a CPU takes minutes per 512 px image: two batch-1 runs, no
        # separate warm-up, no batch 4 unless asked (--runs4); on a GPU, the full protocol.
        slow = big and not cuda
        runs = args.runs or (2 if slow else 5 if big else 15)
        runs4 = args.runs4 if args.runs4 >= 0 else (0 if slow else 3 if big else 8)
        preview_runs = args.preview_runs or (1 if slow else 3)
        config = {
            "folder": str(folder),
            "size": size,
            "steps": steps,
            "dtype": dtype,
            "device": device,
            "tiny": name == "tiny",
            "work": str(work),
        }
        ns = argparse.Namespace(
            **{
                **vars(args),
                "runs": runs,
                "runs4": runs4,
                "preview_runs": preview_runs,
                "warm": not slow,
            }
        )
        print(auto_advice(folder, device, getattr(torch, dtype)), flush=True)
        results.append(run_model(f"{name} {size}px", config, candidates, ns, work))
        print_table(*results[-1])
    if not args.work:  # kept after a failure: the workers' logs are there
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nall done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
