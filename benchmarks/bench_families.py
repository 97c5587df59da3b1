"""Parameter counts and memory needs of the model families: full size on the meta device.

    python benchmarks/bench_families.py           # full-size architectures (no weights in RAM)
    python benchmarks/bench_families.py --smoke   # the tiny builds only (seconds)

Each family's transformer, VAE and text encoder is built from the published configs
(``gempix/engine/families/*.py``) on PyTorch's meta device, so a 20B model costs no memory.
Its parameters are counted and checked, within 1 %, against the published bf16 checkpoint of
the same component (file size on the Hub / 2 bytes) and the paper's figure where one is given:
``PUBLISHED`` in each family's module names every source. The "4B / 6B / 20B" of each
model's name is the denoiser alone, rounded; it is printed beside the exact count.

Memory per mode uses GemPix's own advisor (``memory.estimate_needs``) on the counted
weights in bf16 at the family's native 1024x1024: high = everything on the card, balanced =
model offload (one component at a time), low = sequential offload (one layer at a time). The
working-memory part of that formula was fitted to SD UNets; for these DiTs it is an estimate
until it is measured on a GPU. A card "fits" a mode when need x 1.2 (the advisor's
headroom) <= its size, which is how ``--memory auto`` picks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GiB = 1024**3
CARDS_GIB = (8, 12, 16, 24, 80)
TOLERANCE = 0.01
NATIVE = 1024


def count(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def full_size_counts() -> dict[str, dict[str, object]]:
    """Each family's meta-device components and their parameter counts."""
    from gempix.engine.families import FAMILIES, full_size_components

    return {name: full_size_components(name) for name in FAMILIES}


def check_counts(components: dict[str, dict[str, object]]) -> bool:
    """Counted vs each published figure (``PUBLISHED`` in each family's module)."""
    from gempix.engine.families import family

    print(f"{'family':16} {'component':13} {'counted':>14} {'published':>14} {'diff':>7}  source")
    ok = True
    for name, parts in components.items():
        module = family(name)
        for part, component in parts.items():
            counted = count(component)
            for published, source in module.PUBLISHED[part]:
                diff = counted / published - 1
                ok &= abs(diff) <= TOLERANCE
                mark = "" if abs(diff) <= TOLERANCE else "  <-- outside 1 %"
                print(
                    f"{name:16} {part:13} {counted:>14,} {published:>14,.0f} {diff:>+7.2%}  "
                    f"{source}{mark}"
                )
        denoiser = count(parts["transformer"])
        total = sum(count(component) for component in parts.values())
        print(
            f"{name:16} {'(headline)':13} {denoiser:>14,} {module.HEADLINE:>14,.0f} "
            f"{denoiser / module.HEADLINE - 1:>+7.2%}  the name's figure; all components: "
            f"{total / 1e9:.2f}B"
        )
    return ok


def memory_table(components: dict[str, dict[str, object]], dtype_name: str, size: int) -> None:
    """Per-mode needs from GemPix's advisor, and what each card size runs."""
    import torch

    from gempix.engine import memory

    dtype = getattr(torch, dtype_name)
    itemsize = torch.empty((), dtype=dtype).element_size()
    totals = {name: sum(count(m) for m in parts.values()) for name, parts in components.items()}
    unit, label = (GiB, "GiB") if max(totals.values()) * itemsize >= GiB else (1024**2, "MiB")
    print(f"\nWeights in {dtype_name}, per component ({label}):")
    for name, parts in components.items():
        listed = ", ".join(f"{part} {count(m) * itemsize / unit:.2f}" for part, m in parts.items())
        print(f"  {name:16} {listed}; total {totals[name] * itemsize / unit:.2f}")
    print(
        f"\nNeeds for one {size}x{size} image ({label}); per card, the mode --memory auto picks"
        " and, in brackets, a faster one that fits when asked for explicitly:"
    )
    header = "".join(f"{f'{card} GiB':>16}" for card in CARDS_GIB)
    print(f"  {'family':16} {'high':>7} {'balanced':>9} {'low':>7} {header}")
    for name, parts in components.items():
        pipe = types.SimpleNamespace(components=parts)
        needs = memory.estimate_needs(pipe, dtype=dtype, device="cuda", width=size, height=size)
        cells = []
        for card in CARDS_GIB:
            auto = [m for m in memory.CONCRETE_MODES if needs[m] * memory.HEADROOM <= card * GiB]
            asked = [m for m in memory.CONCRETE_MODES if needs[m] <= card * GiB]
            cell = auto[0] if auto else "none"
            if asked and asked[0] != cell:
                cell += f" [{asked[0]}]"
            cells.append(f"{cell:>16}")
        print(
            f"  {name:16} {needs.high / unit:>7.1f} {needs.balanced / unit:>9.1f} "
            f"{needs.low / unit:>7.1f} {''.join(cells)}"
        )
    print(
        "\nCPU RAM for the weights alone (GemPix runs float32 on a CPU; low mode keeps them there):"
    )
    for name, total in totals.items():
        single, half = total * 4 / unit, total * 2 / unit
        print(f"  {name:16} float32 {single:.1f} {label}, bfloat16 {half:.1f} {label}")


def smoke() -> None:
    """Build, load and count the tiny families: the same code path, in seconds."""
    from gempix.engine.families import FAMILIES, build_tiny_family, load_family

    with tempfile.TemporaryDirectory() as work:
        components = {}
        for name in FAMILIES:
            started = time.perf_counter()
            folder = build_tiny_family(name, Path(work) / name)
            pipe = load_family(name, folder, local_files_only=True)
            seconds = time.perf_counter() - started
            components[name] = {
                part: getattr(pipe, part) for part in ("transformer", "vae", "text_encoder")
            }
            counts = ", ".join(f"{p} {count(m):,}" for p, m in components[name].items())
            print(f"tiny {name:16} built and loaded in {seconds:.1f} s; {counts}")
        memory_table(components, "float32", 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny builds only")
    args = parser.parse_args()
    if args.smoke:
        smoke()
        return
    started = time.perf_counter()
    components = full_size_counts()
    print(f"Built on the meta device in {time.perf_counter() - started:.1f} s\n")
    ok = check_counts(components)
    memory_table(components, "bfloat16", NATIVE)
    if not ok:
        raise SystemExit("Some parameter counts are more than 1 % off the published figures.")


if __name__ == "__main__":
    main()
