"""Live previews in the web app: streamed into the Results gallery once per step, or not at all
when GEMPIX_PREVIEWS is off."""

from __future__ import annotations

import dataclasses
import shutil
import socket

import pytest
from gradio_client import Client

from gempix.privacy.identity import new_user_key
from gempix.ui.app import build_app, launch_options
from gempix.ui.create import GENERATE_INPUTS

STEPS = 3
# The generate endpoint's controls, by name, in GENERATE_INPUTS order; any other is left empty.
CONTROLS = dict(
    prompt="a red fox",
    styles=[],
    resolution="native",
    aspect="1:1",
    upscaler="auto",
    negative="",
    seed=5,
    random_seed=False,
    steps=STEPS,
    guidance=0.0,
    num_images=1,
    init_image=None,
    strength=0.6,
    style_strength=0.8,
    character="",
    character_strength=0.7,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder):
    from gempix.service import Studio
    from gempix.settings import Settings

    data = tmp_path_factory.mktemp("preview-app")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data / "gradio-cache"))
        studio = Studio(Settings.load({}, data_dir=str(data), model="tiny"))
        app = build_app(studio)
        _, url, _ = app.launch(
            server_name="127.0.0.1",
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(),
        )
    try:
        yield studio, Client(url, verbose=False), data / "gradio-cache"
    finally:
        app.close()
        studio.close()


@pytest.fixture(autouse=True)
def same_cache(served, monkeypatch):
    """Previews are cached under GRADIO_TEMP_DIR at request time: keep the app's."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(served[2]))


def outputs_of_one_generation(client) -> list:
    key = new_user_key()
    client.predict(key, True, api_name="/confirm_age")
    job = client.submit(
        key, *(CONTROLS.get(name) for name in GENERATE_INPUTS), api_name="/generate"
    )
    job.result(timeout=120)
    return job.outputs()


def test_previews_stream_into_the_results_gallery_once_per_step(served):
    studio, client, _ = served
    assert studio.settings.previews  # the default
    *previews, final = outputs_of_one_generation(client)
    captions = [update[0][0]["caption"] for update in previews]
    assert captions == [f"Preview: step {step} of {STEPS}" for step in range(1, STEPS + 1)]
    gallery = final[0]  # the saved image replaces the last preview
    assert len(gallery) == 1 and "seed 5" in gallery[0]["caption"]


def test_previews_off_streams_only_the_result(served, monkeypatch):
    studio, client, _ = served
    monkeypatch.setattr(studio, "settings", dataclasses.replace(studio.settings, previews=False))
    (final,) = outputs_of_one_generation(client)
    assert len(final[0]) == 1
