"""The web app: time to first page, and a generate through the UI over the same service call.

    python benchmarks/bench_ui.py              # tiny model, 64 px, 2 steps, 9 runs
    python benchmarks/bench_ui.py --runs 15
    python benchmarks/bench_ui.py --smoke      # one launch, one run (CI)

1. **Launch to first page.** In a fresh process each time (so imports count, as for a user
   running ``python app.py``): import GemPix and Gradio, load the model, build the Blocks app,
   launch on a free port, and GET ``/`` until it answers 200. Reports each phase and the total,
   median of ``--launches`` processes.
2. **Generate through the UI over the service.** One app, launched once; then, interleaved,
   (a) ``Studio.generate`` called directly and (b) the same request through the web app's
   ``/generate`` endpoint with ``gradio_client`` (HTTP, queue, SSE, the handler, PNG copy into
   Gradio's cache, JPEG download prepared, file download by the client). Prints medians and the
   ratio b/a, and (b - a) in ms: what the web door adds per generation.

Everything runs on the offline ``tiny`` model in a temporary data dir; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import httpx
from gempix.service import Studio
from gempix.settings import Settings
from gempix.ui.app import build_app, launch_options
t_import = time.perf_counter()
studio = Studio(Settings.load({}, data_dir=sys.argv[1], model="tiny"))
studio.model()
t_model = time.perf_counter()
app = build_app(studio)
t_build = time.perf_counter()
_, url, _ = app.launch(server_name="127.0.0.1", server_port=int(sys.argv[2]),
                       prevent_thread_lock=True, quiet=True, **launch_options())
t_launch = time.perf_counter()
for _ in range(600):  # bounded: at most ~60 s
    try:
        if httpx.get(url, timeout=5).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.1)
else:
    raise SystemExit("the page never answered")
t_page = time.perf_counter()
print(json.dumps({"import_s": t_import - t0, "model_s": t_model - t_import,
                  "build_s": t_build - t_model,
                  "launch_s": t_launch - t_build, "first_page_s": t_page - t_launch,
                  "total_s": t_page - t0}))
app.close()
studio.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(data: Path) -> None:
    from gempix.engine.tiny import ensure_tiny

    ensure_tiny(data / "models" / "tiny")


def first_page(data: Path, launches: int) -> dict[str, float]:
    samples: list[dict[str, float]] = []
    for _ in range(launches):
        env = {**os.environ, "GRADIO_TEMP_DIR": str(data / "gradio-cache")}
        output = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        (line,) = [line for line in output.splitlines() if line.startswith("{")]
        samples.append(json.loads(line))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def generate_overhead(data: Path, runs: int) -> dict[str, float]:
    from gradio_client import Client

    from gempix.params import GenerationRequest
    from gempix.privacy.gate import confirm_age
    from gempix.privacy.identity import new_user_key, server_secret, user_id_for
    from gempix.service import Studio
    from gempix.settings import Settings
    from gempix.ui.app import build_app, launch_options

    os.environ["GRADIO_TEMP_DIR"] = str(data / "gradio-cache")
    # one user makes every generation: no per-user budget (gempix/budget.py) in the way
    settings = Settings.load({}, data_dir=str(data), model="tiny", rate_user_generate="off")
    studio = Studio(settings)
    app = build_app(studio)
    _, url, _ = app.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(),
    )
    try:
        key = new_user_key()
        user_id = user_id_for(server_secret(studio.settings), key)
        confirm_age(studio.store, user_id)
        client = Client(url, verbose=False)
        request = GenerationRequest("a lighthouse at dawn", seed=1, steps=2, aspect="1:1")
        arguments = {  # the same request through the named endpoint; the rest defaults
            "user_key": key,
            "prompt": request.prompt,
            "aspect": "1:1",
            "seed": 1,
            "random_seed": False,
            "steps": 2,
            "guidance": 0.0,
        }

        def direct():
            studio.generate(request, user_id=user_id, front_door="ui")

        def through_ui():
            client.predict(**arguments, api_name="/generate")

        direct()  # warm both paths once
        through_ui()
        return interleaved(runs, direct=direct, ui=through_ui)
    finally:
        app.close()
        studio.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="generations per side (default 9)")
    parser.add_argument("--launches", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--smoke", action="store_true", help="one launch, one run (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.runs = args.launches = 1
    with tempfile.TemporaryDirectory(prefix="gempix-bench-ui-") as tmp:
        data = Path(tmp) / "data"
        prepare(data)
        page = first_page(data, args.launches)
        print(f"launch to first page (median of {args.launches} fresh processes, tiny model):")
        for key, value in page.items():
            print(f"  {key:<13} {value:6.2f} s")
        times = generate_overhead(data, args.runs)
        direct, ui = times["direct"], times["ui"]
        print(f"generate, 1 image 64x64, 2 steps (median of {args.runs}, interleaved):")
        print(f"  service direct  {direct * 1000:8.1f} ms")
        print(f"  through the UI  {ui * 1000:8.1f} ms")
        print(f"  ratio UI/direct {ui / direct:8.2f}   (UI adds {(ui - direct) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
