"""Memory modes, the memory advisor, fast paths, compile reuse and NaN-safe decoding.

Everything runs on the tiny model on a CPU: the mode *selection* logic is pure and tested
table-driven; the GPU branches of ``apply_mode`` are checked for the calls they make; images
are compared pixel by pixel against the default path with the bounds stated per test.
"""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gempix.engine import fastpaths, memory, pipeline, runtime
from gempix.engine.models import ModelManager
from gempix.engine.pipestate import state_of
from gempix.engine.presets import PRESETS
from gempix.errors import ModelUnavailableError
from gempix.settings import Settings

GIB = memory.GiB


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_folder):
    data = tmp_path_factory.mktemp("perf-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    return data


def load(data_dir, dtype="auto"):
    return ModelManager(Settings.load({}, data_dir=str(data_dir), model="tiny", dtype=dtype)).get()


@pytest.fixture(scope="module")
def loaded(data_dir):
    return load(data_dir)


def is_black(image) -> bool:
    """Every pixel (near) black: what a float16 VAE overflow gives in plain diffusers."""
    return image.convert("L").getextrema()[1] <= 2


def pixels(pipe, size=64, seed=3, steps=2, **extra) -> np.ndarray:
    image = pipe(
        "a red fox",
        num_inference_steps=steps,
        guidance_scale=0.0,
        width=size,
        height=size,
        generator=torch.Generator("cpu").manual_seed(seed),
        **extra,
    ).images[0]
    return np.asarray(image).astype(int)


# --- the advisor: documented thresholds, table-driven -------------------------------------

# (free GiB, high-mode need GiB, device, expected). Rule: the first of high, balanced, low whose
# need x HEADROOM (1.2) fits; balanced needs 0.75 and low 0.15 of the high need on an
# accelerator; on a CPU every mode needs the whole number; nothing fits -> low.
ADVICE = [
    (24.0, 10.0, "cuda", "high"),
    (12.0, 10.0, "cuda", "high"),  # exactly need x 1.2
    (11.9, 10.0, "cuda", "balanced"),
    (9.0, 10.0, "cuda", "balanced"),  # 7.5 x 1.2
    (8.9, 10.0, "cuda", "low"),
    (1.8, 10.0, "cuda", "low"),  # 1.5 x 1.2
    (0.5, 10.0, "cuda", "low"),  # nothing fits: low, and check_fits refuses
    (9.0, 10.0, "cuda:1", "balanced"),
    (12.0, 10.0, "mps", "high"),
    (9.0, 10.0, "mps", "balanced"),
    (64.0, 10.0, "cpu", "high"),
    (12.0, 10.0, "cpu", "high"),
    (11.9, 10.0, "cpu", "low"),  # weights cannot move: only the working memory shrinks
    (2.0, 10.0, "cpu", "low"),
]


@pytest.mark.parametrize(("free", "needed", "device", "expected"), ADVICE)
def test_advisor_picks_the_documented_mode(free, needed, device, expected):
    assert memory.advise_mode(int(free * GIB), int(needed * GIB), device) == expected


def test_advisor_uses_full_needs_when_given():
    needs = memory.MemoryNeeds(high=10 * GIB, balanced=4 * GIB, low=1 * GIB)
    assert memory.advise_mode(12 * GIB, needs, "cuda") == "high"
    assert memory.advise_mode(11 * GIB, needs, "cuda") == "balanced"
    assert memory.advise_mode(int(4.81 * GIB), needs, "cuda") == "balanced"
    assert memory.advise_mode(int(4.79 * GIB), needs, "cuda") == "low"


def test_does_not_fit_names_needed_free_and_the_mode_that_fits():
    needs = memory.MemoryNeeds(high=10 * GIB, balanced=6 * GIB, low=2 * GIB)
    with pytest.raises(ModelUnavailableError) as caught:
        memory.check_fits("high", 7 * GIB, needs, "cuda", "Model 'sdxl'")
    message = caught.value.message
    assert "10.0 GiB" in message and "7.0 GiB" in message
    assert "'high'" in message and "--memory balanced (needs about 6.0 GiB)" in message
    with pytest.raises(ModelUnavailableError) as caught:
        memory.check_fits("low", 1 * GIB, needs, "cuda")
    assert "No memory mode fits" in caught.value.message
    assert "2.0 GiB" in caught.value.message and "1.0 GiB" in caught.value.message
    memory.check_fits("balanced", 6 * GIB, needs, "cuda")  # fits exactly: no error


def test_apply_mode_refuses_a_model_that_does_not_fit(loaded):
    pipe = copy.deepcopy(loaded.pipe)
    needed = memory.estimate_needs(pipe, device="cpu")
    with pytest.raises(ModelUnavailableError) as caught:
        memory.apply_mode(pipe, "auto", "cpu", free_bytes=needed.low // 2)
    assert f"{needed.low / GIB:.1f} GiB" in caught.value.message
    assert "low" in caught.value.message and "No memory mode fits" in caught.value.message


def test_estimates_count_the_weights_and_order_the_modes(loaded):
    pipe = loaded.pipe
    weights = sum(
        t.numel() * t.element_size()
        for m in memory.torch_modules(pipe).values()
        for t in (*m.parameters(), *m.buffers())
    )
    working = memory.working_bytes(64, 64, 1, 4, "high")
    gpu = memory.estimate_needs(pipe, device="cuda")
    assert gpu.high == weights + working
    assert gpu.high > gpu.balanced > gpu.low
    cpu = memory.estimate_needs(pipe, device="cpu")
    assert cpu.high == gpu.high and cpu.low >= weights  # nothing leaves RAM on a CPU
    # counted at float16, float weights take half the bytes (integer buffers keep theirs)
    half_weights = sum(
        t.numel() * (2 if t.is_floating_point() else t.element_size())
        for m in memory.torch_modules(pipe).values()
        for t in (*m.parameters(), *m.buffers())
    )
    half = memory.estimate_needs(pipe, torch.float16, device="cuda")
    assert half.high - memory.working_bytes(64, 64, 1, 2) == half_weights < weights
    # presets, before loading: SDXL-Turbo in float16 at 512 px needs 6.5-9 GiB on a GPU
    sdxl = memory.estimate_needs(PRESETS["sdxl-turbo"], torch.float16)
    assert 6.5 * GIB < sdxl.high < 9 * GIB and sdxl.low < 2 * GIB
    assert memory.advise_mode(int(8 * GIB), sdxl, "cuda") == "balanced"
    assert memory.advise_mode(int(24 * GIB), sdxl, "cuda") == "high"


def test_auto_on_this_cpu_keeps_the_tiny_model_in_high_mode(loaded):
    pipe = copy.deepcopy(loaded.pipe)
    assert memory.apply_mode(pipe, "auto", "cpu") == "high"
    assert memory.current_mode(pipe) == "high"


# --- applying modes -----------------------------------------------------------------------


class _Recorder:
    """Stands in for a pipeline to record which switches a mode flips on a GPU."""

    def __init__(self):
        self.calls = []
        self.vae = self
        self.components = {}

    def __getattr__(self, name):
        if name.startswith(("enable_", "to")):
            return lambda *args, **kwargs: self.calls.append((name, args, kwargs))
        raise AttributeError(name)


@pytest.mark.parametrize(
    ("mode", "device", "expected"),
    [
        ("high", "cuda", [("to", ("cuda",), {})]),
        (
            "balanced",
            "cuda",
            [
                ("enable_model_cpu_offload", (), {"device": "cuda"}),
                ("enable_tiling", (), {}),
                ("enable_slicing", (), {}),
            ],
        ),
        (
            "low",
            "cuda",
            [
                ("enable_sequential_cpu_offload", (), {"device": "cuda"}),
                ("enable_tiling", (), {}),
                ("enable_slicing", (), {}),
                ("enable_attention_slicing", (), {}),
            ],
        ),
        ("high", "cpu", [("to", ("cpu",), {})]),
        (
            "balanced",
            "cpu",
            [("to", ("cpu",), {}), ("enable_tiling", (), {}), ("enable_slicing", (), {})],
        ),
        (
            "low",
            "cpu",
            [
                ("to", ("cpu",), {}),
                ("enable_tiling", (), {}),
                ("enable_slicing", (), {}),
                ("enable_attention_slicing", (), {}),
            ],
        ),
    ],
)
def test_each_mode_flips_its_switches(mode, device, expected):
    pipe = _Recorder()
    needs = memory.MemoryNeeds(GIB, GIB, GIB)
    assert memory.apply_mode(pipe, mode, device, free_bytes=2 * GIB, needs=needs) == mode
    assert pipe.calls == expected


def test_unknown_mode_is_refused(loaded):
    with pytest.raises(ValueError, match="auto, high, balanced, low"):
        memory.apply_mode(copy.deepcopy(loaded.pipe), "turbo", "cpu")


def test_every_mode_draws_the_default_image_at_native_size(loaded):
    """Bound: identical up to 1/255 per channel (attention slicing may reorder float sums;
    tiling does not engage at the native size)."""
    reference = pixels(loaded.pipe)
    for mode in ("balanced", "low"):  # high on a CPU only calls .to("cpu")
        pipe = copy.deepcopy(loaded.pipe)
        memory.apply_mode(pipe, mode, "cpu")
        difference = np.abs(pixels(pipe) - reference)
        assert difference.max() <= 1, f"{mode} differs from the default by {difference.max()}"


def test_vae_tiling_engages_above_the_tile_size(loaded):
    """Latents for 128 px, twice the tiny VAE's 64 px tile: balanced mode decodes them tile by
    tile. Proof: the top-left 48 px (the first tile minus its 16 px blend band) equal, exactly,
    a decode of the first tile's latents alone. No bound on the whole image is claimed: with
    random weights the tiny VAE's receptive field spans the image, so seams differ widely
    (mean 23/255 measured); a trained VAE's tiles blend far better."""
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    pipe = copy.deepcopy(loaded.pipe)

    def decode(vae, z):
        with torch.inference_mode():
            return vae.decode(z, return_dict=False)[0]

    untiled = decode(pipe.vae, latents)
    memory.apply_mode(pipe, "balanced", "cpu")
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    tiled = decode(pipe.vae, latents)
    assert not torch.equal(tiled, untiled), "tiling did not engage"
    first_tile = decode(pipe.vae, latents[:, :, :8, :8])
    assert torch.allclose(tiled[..., :48, :48], first_tile[..., :48, :48], atol=1e-5)


def test_bfloat16_on_cpu_matches_float32_within_bound(data_dir, loaded):
    """Bound: bf16 (8-bit mantissa) vs fp32 differ by at most 8/255 per channel and 1.0/255 on
    average on the tiny model; measured 4 and 0.47."""
    half = load(data_dir, dtype="bfloat16")
    assert half.dtype == torch.bfloat16
    difference = np.abs(pixels(half.pipe) - pixels(loaded.pipe))
    assert difference.max() <= 8 and difference.mean() <= 1.0


# --- CPU hygiene --------------------------------------------------------------------------


def test_no_float64_and_nothing_wider_than_float32(loaded):
    for name, module in memory.torch_modules(loaded.pipe).items():
        for key, tensor in (*module.named_parameters(), *module.named_buffers()):
            if tensor.is_floating_point():
                assert tensor.element_size() <= 4, f"{name}.{key} is {tensor.dtype}"


def test_img2img_shares_the_text2img_weights(data_dir):
    from gempix.engine.generate import run
    from gempix.engine.request import GenerationRequest, plan

    fresh = load(data_dir)
    request = GenerationRequest(
        "a red fox", init_image=Image.new("RGB", (64, 64), "gray"), steps=2, strength=0.5
    )
    images = run(fresh, plan(request, fresh.preset))
    assert len(images) == 1 and fresh.img2img is not None
    for name, module in memory.torch_modules(fresh.pipe).items():
        other = getattr(fresh.img2img, name)
        pointers = [p.data_ptr() for p in module.parameters()]
        assert pointers == [p.data_ptr() for p in other.parameters()], f"{name} was copied"


def test_threads_follow_physical_cores():
    before = torch.get_num_threads()
    try:
        cores = runtime.physical_cores()
        assert cores >= 1
        assert runtime.configure_threads() == cores == torch.get_num_threads()
        assert runtime.configure_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# --- fast paths ---------------------------------------------------------------------------


def test_fast_paths_set_sdpa_and_leave_other_processors_alone(loaded):
    from diffusers.models.attention_processor import (
        AttnProcessor,
        AttnProcessor2_0,
        SlicedAttnProcessor,
    )

    pipe = copy.deepcopy(loaded.pipe)
    pipe.unet.set_attn_processor(AttnProcessor())  # the pre-SDPA processor
    report = fastpaths.fast_paths(pipe, "cpu")
    kinds = {type(p) for p in pipe.unet.attn_processors.values()}
    assert kinds == {AttnProcessor2_0}
    assert any("unet: SDPA attention (8 set" in line for line in report.applied)
    assert any("channels_last" in line for line in report.skipped)

    sliced = copy.deepcopy(loaded.pipe)
    memory.apply_mode(sliced, "low", "cpu")
    fastpaths.fast_paths(sliced, "cpu")
    assert {type(p) for p in sliced.unet.attn_processors.values()} == {SlicedAttnProcessor}


@pytest.mark.slow
def test_compile_happens_once_per_shape_and_is_announced(loaded):
    """A counting dynamo backend: one graph per shape, reused; a new shape compiles again and
    is announced by compile_notice first; warmup marks shapes as compiled."""
    graphs = []

    def counting_backend(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    pipe = copy.deepcopy(loaded.pipe)
    assert fastpaths.compile_notice(pipe, 64, 64) is None  # nothing compiled: nothing to say
    report = fastpaths.fast_paths(pipe, "cpu", compile=True, backend=counting_backend)
    assert any("torch.compile" in line for line in report.applied)
    assert "compiling" in fastpaths.compile_notice(pipe, 64, 64)
    first = pixels(pipe, steps=1)
    compiled_once = len(graphs)
    assert compiled_once >= 1
    assert fastpaths.compile_notice(pipe, 64, 64) is None
    assert np.array_equal(pixels(pipe, steps=1), first)
    assert len(graphs) == compiled_once, "same shape compiled again"
    again = fastpaths.fast_paths(pipe, "cpu", compile=True, backend=counting_backend)
    assert "torch.compile: already compiled" in again.applied

    class Loaded:  # what warmup reads from a LoadedModel
        def __init__(self):
            self.pipe, self.preset, self.lock = pipe, loaded.preset, loaded.lock

    timings = fastpaths.warmup(Loaded(), sizes=[(72, 72)])  # a new shape, compiled at start-up
    assert [key for key, _ in timings] == [fastpaths.shape_key(72, 72)]
    assert len(graphs) > compiled_once, "a new shape reused the old graph"
    assert fastpaths.compile_notice(pipe, 72, 72) is None  # warmed: nothing to announce


# --- half precision: NaN-safe decode ------------------------------------------------------


def test_float16_overflow_is_detected_and_redecoded_in_float32(data_dir):
    """Latents scaled x1000 after the last step overflow a float16 decode (inf -> NaN ->
    black image in plain diffusers); decode_safe re-decodes with the VAE in float32 and
    matches a float32 decode of the same latents within 1/255."""
    half = load(data_dir, dtype="float16")
    pipe = half.pipe
    assert pipeline.vae_is_half(pipe) and pipeline.guards_decode(pipe)
    captured = {}

    def overflow(pipeline, step, timestep, kwargs):
        if step + 1 == pipeline.num_timesteps:
            kwargs["latents"] = kwargs["latents"] * 1000
            captured["latents"] = kwargs["latents"].clone()
        return kwargs

    def call_kwargs():
        return dict(
            prompt="a red fox",
            num_inference_steps=1,
            guidance_scale=0.0,
            width=64,
            height=64,
            generator=torch.Generator("cpu").manual_seed(3),
            callback_on_step_end=overflow,
        )

    with np.errstate(invalid="ignore"):
        plain = pipe(**call_kwargs()).images[0]
    assert is_black(plain), "the overflow did not happen: the test proves nothing"

    recovered = pipeline.call_pipeline(pipe, call_kwargs())[0]
    assert not is_black(recovered)
    assert pipeline.vae_is_half(pipe), "the VAE was left in float32"

    vae32 = copy.deepcopy(pipe.vae).float()
    with torch.inference_mode():
        latents = captured["latents"].float() / vae32.config.scaling_factor
        reference = pipe.image_processor.postprocess(
            vae32.decode(latents, return_dict=False)[0], output_type="pil"
        )[0]
    difference = np.abs(np.asarray(recovered).astype(int) - np.asarray(reference).astype(int))
    assert difference.max() <= 1

    # remembered: the next decode goes straight to float32
    assert state_of(pipe).vae_upcast
    again = pipeline.decode_safe(pipe, captured["latents"])[0]
    assert np.array_equal(np.asarray(again), np.asarray(recovered))


def test_the_detail_pass_decodes_through_the_float16_guard(data_dir):
    """The upscaler's detail pass calls its img2img pipeline through ``call_pipeline`` like
    every other call: a float16 decode that overflows (here: the latents scaled x100000 at
    the VAE's first layer, which float32 survives) is redone in float32 instead of turning
    the tile black, as a direct call of the same pipeline with the same inputs does."""
    from gempix.engine.detail import DetailJob

    half = load(data_dir, dtype="float16")
    half.pipe.vae.post_quant_conv.register_forward_pre_hook(lambda module, args: (args[0] * 1e5,))
    job = DetailJob(half, prompt="a red fox", seed=3, steps=2)
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (job.tile, job.tile, 3), dtype=np.uint8))
    img2img = pipeline.img2img_pipeline(half)
    direct = img2img(
        prompt="a red fox",
        image=picture,
        strength=job.strength,
        num_inference_steps=job.inference_steps,
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(job.seed),
        output_type="np",
    ).images[0]
    assert np.isnan(direct).any(), "the overflow did not happen: the test proves nothing"

    refined = job.refine(picture)
    assert refined.size == picture.size and not is_black(refined)
    assert state_of(img2img).vae_upcast, "the detail pass's decode was not guarded"
    assert pipeline.vae_is_half(img2img), "the VAE was left in float32"


def test_nan_latents_raise_a_clear_error(data_dir, loaded):
    latents = torch.full((1, 4, 8, 8), float("nan"))
    with pytest.raises(pipeline.NumericalError, match="GEMPIX_DTYPE=float32"):
        pipeline.decode_safe(loaded.pipe, latents)


def test_float32_pipelines_are_called_unchanged(loaded):
    assert not pipeline.guards_decode(loaded.pipe)
    kwargs = dict(
        prompt="a red fox",
        num_inference_steps=2,
        guidance_scale=0.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(3),
    )
    via = np.asarray(pipeline.call_pipeline(loaded.pipe, kwargs)[0]).astype(int)
    assert np.array_equal(via, pixels(loaded.pipe))


# --- wiring: settings reach the loaded model ----------------------------------------------


def test_the_memory_setting_is_applied_when_the_model_loads(data_dir):
    manager = ModelManager(Settings.load({"GEMPIX_MEMORY": "low"}, data_dir=str(data_dir)))
    low = manager.get("tiny")
    assert low.memory_mode == "low" == memory.current_mode(low.pipe)
    assert low.pipe.vae.use_tiling and low.pipe.vae.use_slicing


def test_a_model_that_does_not_fit_says_needed_free_and_the_mode(data_dir, monkeypatch):
    """free = available RAM + the weights already loaded: 1 KiB of RAM leaves the tiny model
    (weights x 1.2 > weights + 1 KiB) in 'low' under auto, which still needs its weights plus
    working memory on a CPU, so it is refused with the numbers."""
    monkeypatch.setattr(memory, "free_device_bytes", lambda device: 1024)
    manager = ModelManager(Settings.load({}, data_dir=str(data_dir), model="tiny"))
    with pytest.raises(ModelUnavailableError) as caught:
        manager.get()
    message = caught.value.message
    assert "Model 'tiny' needs about" in message and "of cpu memory in 'low'" in message
    assert "is free" in message and "No memory mode fits" in message


def test_an_explicit_mode_that_does_not_fit_suggests_the_one_that_does(loaded):
    pipe = copy.deepcopy(loaded.pipe)
    needs = memory.MemoryNeeds(high=10 * GIB, balanced=6 * GIB, low=2 * GIB)
    with pytest.raises(ModelUnavailableError, match="Use --memory balanced"):
        memory.apply_mode(pipe, "high", "cuda", free_bytes=7 * GIB, needs=needs)


def test_warm_up_generates_once_at_the_native_size(data_dir):
    manager = ModelManager(Settings.load({}, data_dir=str(data_dir), model="tiny"))
    loaded = manager.get()
    calls = []
    loaded.pipe.unet.register_forward_hook(lambda module, args, output: calls.append(1))
    assert manager.warm_up() > 0
    assert len(calls) == 1  # one 1-step image: a compiled graph depends on the shape only
    width, height = loaded.preset.native
    assert fastpaths.shape_key(width, height) in state_of(loaded.pipe).shapes


def test_threads_setting_reaches_torch_on_a_cpu(data_dir):
    before = torch.get_num_threads()
    try:
        ModelManager(Settings.load({"GEMPIX_THREADS": "1"}, data_dir=str(data_dir))).get("tiny")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
