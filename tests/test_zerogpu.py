"""ZeroGPU: the GPU work under ``spaces.GPU`` when ``SPACES_ZERO_GPU`` is set, nothing otherwise.

The real ``spaces`` package only works on a ZeroGPU Space, so these tests put a fake ``spaces``
in ``sys.modules``. It does what the real decorator does at the boundary that matters to us: it
records the decoration (at import), computes the duration by calling the duration callable with
the call's own arguments, and sends arguments and results through ``pickle`` the way the real
one sends them to and from its forked worker. A worker keeps the registry it was forked with
until a call fails, as the real one does. What is tested is GemPix's wiring and its estimate,
not ZeroGPU itself.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gempix.engine import generate, zerogpu
from gempix.engine.models import LoadedModel
from gempix.engine.presets import PRESETS
from gempix.engine.request import plan
from gempix.engine.runtime import ZEROGPU_ENV
from gempix.engine.upscale import Upscaler
from gempix.params import GenerationRequest
from gempix.provenance import GEMPIX_IDENTIFIER, embed

ROOT = Path(__file__).resolve().parents[1]


class FakeSpaces(types.ModuleType):
    """``spaces.GPU(duration=...)`` as seen from the app process."""

    def __init__(self):
        super().__init__("spaces")
        self.decorated: list[tuple[str, object]] = []  # (function name, duration given)
        self.calls: list[tuple[str, int]] = []  # (function name, duration computed)
        self.worker_registry: object = None  # what the live worker was forked with
        self.forks = 0

    def GPU(self, task=None, *, duration=None):  # noqa: N802 (the real name)
        def decorate(function):
            self.decorated.append((function.__name__, duration))

            def gradio_handler(*args, **kwargs):
                seconds = duration(*args, **kwargs) if callable(duration) else duration
                self.calls.append((function.__name__, seconds))
                if self.worker_registry is None:  # fork a worker: it copies the registry
                    self.worker_registry = zerogpu._current
                    self.forks += 1
                args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
                in_app = zerogpu._current
                zerogpu._current = self.worker_registry  # run "in the worker"
                try:
                    result = function(*args, **kwargs)
                except Exception:
                    self.worker_registry = None  # a failed call's worker is not reused
                    raise
                finally:
                    zerogpu._current = in_app
                return pickle.loads(pickle.dumps(result))

            return gradio_handler

        return decorate(task) if task is not None else decorate


@pytest.fixture
def studio(fresh_studio):
    """A studio with its own model: a Space loads its model its own way and must load no adapter."""
    return fresh_studio


@pytest.fixture
def spaces(monkeypatch):
    """A ZeroGPU Space: the variable set and ``zerogpu`` imported afresh, as at start-up."""
    fake = FakeSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv(ZEROGPU_ENV, "1")
    importlib.reload(zerogpu)
    yield fake
    monkeypatch.delenv(ZEROGPU_ENV)
    monkeypatch.delitem(sys.modules, "spaces")
    importlib.reload(zerogpu)


def loaded_model(name: str = "sdxl") -> LoadedModel:
    return LoadedModel(preset=PRESETS[name], pipe=None, device="cuda", dtype=None)


def plan_for(name: str = "sdxl", **fields):
    return plan(GenerationRequest("a lighthouse", seed=1, **fields), PRESETS[name])


# -- without the variable --------------------------------------------------------------------


def test_without_the_variable_the_plain_function_runs_and_spaces_is_not_imported(monkeypatch):
    monkeypatch.delenv(ZEROGPU_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    importlib.reload(zerogpu)
    assert zerogpu._decorated is None
    assert "spaces" not in sys.modules
    seen = []
    monkeypatch.setattr(generate, "run", lambda *args, **kwargs: seen.append((args, kwargs)))
    loaded, resolved, upscaler = loaded_model(), plan_for(), Upscaler(use_default=False)

    def progress(done, total, stage):
        pass

    zerogpu.run(loaded, resolved, progress, upscaler=upscaler, conditioning=None)
    ((args, kwargs),) = seen
    assert args[0] is loaded and args[1] is resolved and args[2] is progress
    assert kwargs["upscaler"] is upscaler
    assert "spaces" not in sys.modules


@pytest.mark.parametrize("value", ["", "0", "false", "False", "no", "off"])
def test_falsy_values_do_not_enable_it(value):
    assert not zerogpu.enabled({ZEROGPU_ENV: value})
    assert not zerogpu.enabled({})


@pytest.mark.parametrize("value", ["1", "true", "True", "yes"])
def test_set_values_enable_it(value):
    assert zerogpu.enabled({ZEROGPU_ENV: value})


def test_importing_the_app_never_imports_spaces_off_zerogpu(tmp_path):
    """A fresh interpreter, with a ``spaces`` on the path that fails loudly when imported."""
    trap = tmp_path / "spaces"
    trap.mkdir()
    (trap / "__init__.py").write_text("raise ImportError('spaces was imported')\n")
    script = "import gempix.service, gempix.ui, sys; assert 'spaces' not in sys.modules"
    env = {k: v for k, v in os.environ.items() if k != ZEROGPU_ENV}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]


# -- on a ZeroGPU Space ----------------------------------------------------------------------


def test_decorated_once_at_import_before_any_call(spaces):
    names = [name for name, _ in spaces.decorated]
    assert names == ["_generate_on_gpu", "_upscale_on_gpu"]
    assert all(callable(duration) for _, duration in spaces.decorated)
    assert spaces.calls == []


def test_generation_runs_under_spaces_gpu_with_the_estimated_duration(spaces, studio):
    request = GenerationRequest("a lighthouse at dawn", seed=11, num_images=2)
    result = studio.generate(request)
    ((name, seconds),) = spaces.calls
    assert name == "_generate_on_gpu"
    loaded = studio.model()
    expected = zerogpu.estimate_seconds(
        loaded, plan(request, loaded.preset), studio.upscaler(loaded)
    )
    assert seconds == expected
    assert zerogpu.FLOOR_S <= seconds <= zerogpu.CAP_S
    assert len(result.images) == 2


def test_references_are_refused_clearly_on_zerogpu(spaces, studio):
    from PIL import Image

    from gempix.errors import ValidationError

    request = GenerationRequest("a portrait", references=(Image.new("RGB", (32, 32), "red"),))
    with pytest.raises(ValidationError, match="not available on this ZeroGPU Space"):
        studio.generate(request)
    assert spaces.calls == []
    assert studio.model().adapters is None
    assert studio.store.list_generations("local") == []


def test_the_gpu_path_draws_the_same_pixels_as_the_plain_call(spaces, studio):
    request = GenerationRequest("a red fox", seed=5)
    on_zero = studio.generate(request).images[0]
    assert spaces.calls, "the generation did not go through spaces.GPU"
    loaded = studio.model()
    (plain,) = generate.run(loaded, plan(request, loaded.preset), upscaler=studio.upscaler(loaded))
    marked = embed(plain, GEMPIX_IDENTIFIER)  # the service watermarks what it saves
    assert np.array_equal(np.asarray(Image.open(on_zero.path)), np.asarray(marked))


def test_upscaling_a_saved_image_runs_under_spaces_gpu(spaces, studio):
    source = studio.generate(GenerationRequest("a harbour", seed=3)).images[0]
    result = studio.upscale(source.id, width=256, height=256, upscaler="lanczos")
    assert [name for name, _ in spaces.calls] == ["_generate_on_gpu", "_upscale_on_gpu"]
    assert result.images[0].width == 256 and result.images[0].height == 256
    assert zerogpu.FLOOR_S <= spaces.calls[1][1] <= zerogpu.CAP_S


def test_progress_is_not_sent_to_the_worker_and_a_stale_worker_is_replaced(spaces, monkeypatch):
    seen = []
    monkeypatch.setattr(
        generate, "run", lambda loaded, plan, progress, **kw: seen.append((loaded, progress)) or []
    )
    first, second = loaded_model("sdxl"), loaded_model("sdxl")
    zerogpu.run(first, plan_for(), lambda *a: None)
    assert spaces.forks == 1 and seen == [(first, None)]
    # The model was switched; the live worker was forked with the old one.
    zerogpu.run(second, plan_for())
    assert spaces.forks == 2, "a fresh worker should have been forked"
    assert seen[-1] == (second, None)
    assert [name for name, _ in spaces.calls] == ["_generate_on_gpu"] * 3


# -- the estimate ------------------------------------------------------------------------------


def test_documented_example_sdxl_30_steps():
    # 10 s startup + 1 s per image + 30 steps x 1.048576 MP x 0.2 s x 2 (guidance 6) = 23.6 s
    assert zerogpu.estimate_seconds(loaded_model("sdxl"), plan_for("sdxl")) == 24


def test_a_small_request_asks_for_the_floor():
    small = zerogpu.estimate_seconds(loaded_model("sd-turbo"), plan_for("sd-turbo"))
    assert small == zerogpu.FLOOR_S == 15


def test_estimate_grows_with_steps_images_pixels_guidance_and_upscaling():
    loaded = loaded_model("sdxl")
    base = zerogpu.estimate_seconds(loaded, plan_for(steps=20, guidance=0.0))
    more_steps = zerogpu.estimate_seconds(loaded, plan_for(steps=40, guidance=0.0))
    more_images = zerogpu.estimate_seconds(loaded, plan_for(steps=20, guidance=0.0, num_images=3))
    wider = zerogpu.estimate_seconds(
        loaded, plan_for(steps=20, guidance=0.0, width=1536, height=1024)
    )
    guided = zerogpu.estimate_seconds(loaded, plan_for(steps=20, guidance=5.0))
    upscaled = zerogpu.estimate_seconds(
        loaded, plan_for(steps=20, guidance=0.0, aspect="16:9", resolution="4k")
    )
    for bigger in (more_steps, more_images, wider, guided, upscaled):
        assert bigger > base


def test_image_to_image_counts_only_the_steps_it_runs():
    loaded = loaded_model("sdxl")
    init = Image.new("RGB", (64, 64), "gray")
    full = zerogpu.estimate_seconds(loaded, plan_for(steps=60, guidance=0.0))
    partial = zerogpu.estimate_seconds(
        loaded, plan_for(steps=60, guidance=0.0, init_image=init, strength=0.25)
    )
    assert partial < full


def test_lanczos_upscaling_costs_less_than_esrgan_and_detail_more(tmp_path):
    loaded = loaded_model("sdxl")
    no_weights = Upscaler(use_default=False)  # auto resolves to lanczos
    weights = tmp_path / "x4.pth"
    weights.write_bytes(b"0")
    with_weights = Upscaler(weights, use_default=False)  # auto resolves to esrgan
    request = dict(steps=4, guidance=0.0, aspect="16:9", resolution="2k")
    lanczos = zerogpu.estimate_seconds(loaded, plan_for(**request), no_weights)
    esrgan = zerogpu.estimate_seconds(loaded, plan_for(**request), with_weights)
    detail = zerogpu.estimate_seconds(loaded, plan_for(**request, upscaler="detail"), with_weights)
    assert lanczos < esrgan < detail


def test_an_enormous_request_is_capped():
    huge = plan_for("flux-schnell", num_images=8, aspect="1:1", resolution="4k", upscaler="detail")
    assert zerogpu.estimate_seconds(loaded_model("flux-schnell"), huge) == zerogpu.CAP_S
