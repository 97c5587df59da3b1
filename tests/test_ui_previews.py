"""Live previews in the web app: streamed into the Results gallery once per step, or not at all
when GEMPIX_PREVIEWS is off."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from conftest import free_port
from gradio_client import Client

from gempix.privacy.identity import new_user_key
from gempix.ui.app import build_app, launch_options

STEPS = 3
# What /generate is sent, by name; the parameters left out take their defaults.
CONTROLS = dict(prompt="a red fox", seed=5, random_seed=False, steps=STEPS, guidance=0.0)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder, tiny_models):
    from gempix.service import Studio
    from gempix.settings import Settings

    data = tmp_path_factory.mktemp("preview-app")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data / "gradio-cache"))
        studio = Studio(Settings.load({}, data_dir=str(data), model="tiny"), models=tiny_models)
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
    job = client.submit(user_key=key, **CONTROLS, api_name="/generate")
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
