"""The web app, really launched on a free localhost port and driven over HTTP with gradio_client.

One app per module (launching is cheap, loading the model is not); every test makes its own
users, so tests do not see each other's data.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from conftest import free_port
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from gempix.errors import NotFoundError
from gempix.metadata import AI_SOURCE_TYPE, XMP_KEY
from gempix.params import GenerationRequest
from gempix.privacy.identity import new_user_key, server_secret, user_id_for
from gempix.ui.app import build_app, launch_options
from gempix.ui.identity import STORAGE_KEY, browser_secret

# What the tests send to the Create tab's /generate endpoint, by name (the HTTP API's names,
# plus Random seed); the prompt and the user key are given with each call.
DEFAULTS = dict(
    styles=[],
    resolution="native",
    aspect="1:1",
    upscaler="auto",
    negative_prompt="",
    seed=5,
    random_seed=False,
    steps=2,
    guidance=0.0,
    num_images=1,
    init_image=None,
    strength=0.6,
    style_image=None,
    style_strength=0.8,
    character="",
    references=None,
    character_strength=None,
    character_face=False,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder, tiny_models):
    """The app on a free port over its own data dir, for the whole module."""
    from gempix.service import Studio
    from gempix.settings import Settings

    data = tmp_path_factory.mktemp("app-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    # Gradio reads GRADIO_TEMP_DIR at request time too (uploads, streamed outputs): it stays
    # set for the whole module, module-scoped fixtures included.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data / "gradio-cache"))
        studio = Studio(Settings.load({}, data_dir=str(data), model="tiny"), models=tiny_models)
        app = build_app(studio, max_queue=8)
        _, url, _ = app.launch(
            server_name="127.0.0.1",
            server_port=free_port(),
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(),
        )
        try:
            yield SimpleNamespace(url=url, studio=studio, app=app, cache=data / "gradio-cache")
        finally:
            app.close()
            studio.close()


@pytest.fixture(autouse=True)
def same_cache(served, monkeypatch):
    """conftest gives every test its own GRADIO_TEMP_DIR: keep the app's instead."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(served.cache))


@pytest.fixture(scope="module")
def client(served):
    return Client(served.url, verbose=False)


def confirmed_user(client) -> str:
    key = new_user_key()
    client.predict(key, True, api_name="/confirm_age")
    return key


def generate(client, key: str, prompt: str = "a red fox", **changes):
    values = {**DEFAULTS, **changes}
    return client.predict(user_key=key, prompt=prompt, **values, api_name="/generate")


@pytest.fixture(scope="module")
def alice(client):
    """A user with two images (seeds 5 and 6) and their ids."""
    key = confirmed_user(client)
    gallery, selected, details, png, jpeg = generate(client, key, seed=5, num_images=2)
    ids = [item["id"] for item in client.predict(key, 1, api_name="/list_images")]
    return SimpleNamespace(
        key=key, gallery=gallery, selected=selected, details=details, png=png, jpeg=jpeg, ids=ids
    )


def failure(call) -> str:
    with pytest.raises(Exception) as caught:
        call()
    message = str(caught.value)
    assert "Traceback" not in message
    return message


def test_generate_shows_images_with_metadata_and_details(alice):
    assert len(alice.gallery) == 2
    assert [item["caption"] for item in alice.gallery] == ["64×64 · seed 5", "64×64 · seed 6"]
    assert "seed **5**" in alice.details and "| model | tiny |" in alice.details
    with Image.open(alice.gallery[0]["image"]) as image:
        assert image.format == "PNG" and image.size == (64, 64)
        assert "a red fox" in image.info["parameters"]
        assert AI_SOURCE_TYPE in image.info[XMP_KEY]
    with Image.open(alice.png) as image:
        assert image.format == "PNG" and "Seed: 5" in image.info["parameters"]
    with Image.open(alice.jpeg) as image:
        assert image.format == "JPEG" and image.size == (64, 64)


def test_history_is_own_images_newest_first(client, alice):
    gallery, label, *_ = client.predict(alice.key, 1, api_name="/history")
    # One batch shares its created_at (whole seconds), so its order is the store's tie-break.
    assert sorted(item["caption"] for item in gallery) == ["64×64 · seed 5", "64×64 · seed 6"]
    assert [item["image"].rsplit("/", 1)[-1] for item in gallery] == [
        f"{image_id}.png" for image_id in alice.ids
    ]
    assert label == "Page 1 · images 1–2 of 2"
    assert alice.selected in alice.ids
    stranger = confirmed_user(client)
    assert client.predict(stranger, 1, api_name="/list_images") == []
    assert client.predict(stranger, 1, api_name="/history")[1] == "No images yet."


def test_styles_are_applied(client):
    key = confirmed_user(client)
    *_, details, _png, _jpeg = generate(client, key, styles=["watercolor"])
    assert "| styles | watercolor |" in details
    assert "watercolor painting of a red fox" in details


def test_first_generation_needs_the_age_confirmation(client):
    message = failure(lambda: generate(client, new_user_key()))
    assert "at least 13 years old" in message


def test_bad_input_is_a_readable_error(client, tmp_path):
    key = confirmed_user(client)
    assert "prompt: must not be empty." in failure(lambda: generate(client, key, "   "))
    assert "seed: enter a seed" in failure(lambda: generate(client, key, seed=None))
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    message = failure(lambda: generate(client, key, init_image=handle_file(str(text))))
    assert "not a readable image" in message
    message = failure(lambda: generate(client, key, init_image=handle_file(__file__)))
    assert "Invalid file type" in message
    assert "Unknown user key" in failure(lambda: generate(client, "gpu_short"))


def test_unexpected_failure_is_generic(client, served, monkeypatch):
    key = confirmed_user(client)

    def broken(*args, **kwargs):
        raise RuntimeError("/secret/path exploded")

    monkeypatch.setattr(served.studio, "generate", broken)
    message = failure(lambda: generate(client, key))
    assert "Something went wrong on our side" in message
    assert "/secret/path" not in message


def test_reuse_parameters_fills_the_create_tab(client, alice):
    values = client.predict(alice.key, alice.ids[0], api_name="/reuse_parameters")
    prompt, styles, negative, seed, random_seed, steps, guidance, aspect, resolution, *_ = values
    assert (prompt, styles, random_seed, steps) == ("a red fox", [], False, 2)
    assert seed in (5, 6)
    assert (aspect, resolution) == ("1:1", "native")


def test_another_users_ids_are_not_found(client, served, alice):
    mallory = confirmed_user(client)
    target = alice.ids[0]
    calls = {
        "/reuse_parameters": (mallory, target),
        "/delete_image": (mallory, target),
        "/upscale": (mallory, target, "auto"),
    }
    for api_name, args in calls.items():
        message = failure(lambda name=api_name, args=args: client.predict(*args, api_name=name))
        assert f"No generation with id {target!r}" in message
    owner = user_id_for(server_secret(served.studio.settings), alice.key)
    assert served.studio.store.get_generation(owner, target)["id"] == target


def test_upscale_to_4k_adds_an_image(client):
    key = confirmed_user(client)
    gallery, selected, *_ = generate(client, key, seed=9, aspect="21:9")  # a smaller 4K
    gallery, upscaled, details, png, jpeg = client.predict(
        key, selected, "lanczos", api_name="/upscale"
    )
    assert upscaled != selected
    assert gallery[0]["caption"].startswith("3840×") and gallery[0]["caption"].endswith("seed 9")
    assert len(gallery) == 2  # the session's results: the new image, then its source
    assert f"upscaled from | {selected}" in details and "| upscaler | lanczos |" in details
    assert len(client.predict(key, 1, api_name="/list_images")) == 2


def test_delete_one_and_delete_all(client, served):
    key = confirmed_user(client)
    generate(client, key, num_images=3)
    ids = [item["id"] for item in client.predict(key, 1, api_name="/list_images")]
    client.predict(key, ids[0], api_name="/delete_image")
    assert [item["id"] for item in client.predict(key, 1, api_name="/list_images")] == ids[1:]
    message = failure(lambda: client.predict(key, False, api_name="/delete_all_images"))
    assert "Tick" in message
    assert len(client.predict(key, 1, api_name="/list_images")) == 2
    gallery, label, *_ = client.predict(key, True, api_name="/delete_all_images")
    assert gallery == [] and label == "No images yet."
    leftovers = [p for p in served.cache.rglob("*") if p.stem in ids]
    assert leftovers == []


def _reference(tmp_path: Path, name: str, color: str) -> str:
    path = tmp_path / name
    Image.new("RGB", (48, 48), color).save(path)
    return handle_file(str(path))


def test_characters_library(client, tmp_path):
    key = confirmed_user(client)
    red = _reference(tmp_path, "red.png", "red")
    message = failure(
        lambda: client.predict(key, "Ada", [red], False, api_name="/create_character")
    )
    assert "rights" in message
    table, picked, refs, name, *_ = client.predict(
        key,
        "Ada",
        [red, _reference(tmp_path, "blue.png", "blue")],
        True,
        api_name="/create_character",
    )
    assert table["data"][0][:2] == ["Ada", 2] and "UTC" in table["data"][0][3]
    assert name == "Ada" and len(refs) == 2
    character = picked["value"]
    table, *_ = client.predict(key, character, "Ada Lovelace", api_name="/rename_character")
    assert table["data"][0][0] == "Ada Lovelace"
    _, _, details, *_ = generate(client, key, character=character, character_strength=1.0)
    assert "consistency" in details and "Ada Lovelace · 2 references" in details
    # Another user can neither rename nor delete it.
    mallory = confirmed_user(client)
    for args, api_name in (
        ((mallory, character, "Mine"), "/rename_character"),
        ((mallory, character), "/delete_character"),
    ):
        message = failure(lambda a=args, n=api_name: client.predict(*a, api_name=n))
        assert "no character named" in message
    stolen = failure(lambda: generate(client, mallory, character=character))
    assert f"no character named {character!r}" in stolen
    one_off = generate(client, mallory, references=[red], style_image=red)[2]
    assert "one-off references · 1 reference" in one_off and "style reference" in one_off
    table, picked, refs, *_ = client.predict(
        key,
        character,
        [_reference(tmp_path, "green.png", "green")],
        True,
        api_name="/replace_references",
    )
    assert table["data"][0][1] == 1 and len(refs) == 1
    table, picked, refs, name = client.predict(key, character, api_name="/delete_character")[:4]
    assert table["data"] in ([], [[]]) or not table["data"]


def test_privacy_choices(client):
    key = confirmed_user(client)
    training, objection, restricted, status = client.predict(
        key, True, api_name="/set_training_consent"
    )
    assert (training, objection, restricted) == (True, False, False)
    assert "opted in" in status
    training, *_ = client.predict(key, False, api_name="/set_training_consent")
    assert training is False
    _, objection, _, status = client.predict(key, True, api_name="/set_analytics_objection")
    assert objection is True and "objected" in status
    *_, restricted, status = client.predict(key, True, api_name="/set_restriction")
    assert restricted is True and "restricted" in status


def test_export_zip(client, alice):
    result = client.predict(alice.key, api_name="/export")
    path = result["value"] if isinstance(result, dict) else result  # shown with its update
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        generations = json.loads(archive.read("data/generations.json"))
    assert {f"images/{image_id}.png" for image_id in alice.ids} <= set(names)
    assert manifest["counts"]["generations"] == 2
    assert {row["prompt"] for row in generations["rows"]} == {"a red fox"}


def test_erase_everything(client, served):
    key = confirmed_user(client)
    generate(client, key)
    user_id = user_id_for(server_secret(served.studio.settings), key)
    assert "Type DELETE" in failure(lambda: client.predict(key, "delete", api_name="/erase"))
    report, confirm, new_key, *_ = client.predict(key, "DELETE", api_name="/erase")
    assert "Verified:** yes" in report and "generations 1" in report
    assert new_key != key and new_key.startswith("gpu_")
    assert client.predict(key, 1, api_name="/list_images") == []
    with pytest.raises(NotFoundError):
        served.studio.store.get_user(user_id)


def test_api_keys(client):
    key = confirmed_user(client)
    full, name, table, picked = client.predict(key, "laptop", api_name="/create_api_key")
    assert full.startswith("gpx_") and table["data"][0][1] == "laptop"
    prefix = table["data"][0][0]
    mallory = confirmed_user(client)
    assert "No API key" in failure(
        lambda: client.predict(mallory, prefix, api_name="/revoke_api_key")
    )
    table, _ = client.predict(key, prefix, api_name="/revoke_api_key")
    assert table["data"][0][5] != "active"


def test_analytics_is_for_admins_only(client, served, alice):
    assert "administrators" in failure(
        lambda: client.predict(alice.key, "30d", api_name="/analytics")
    )
    admin = confirmed_user(client)
    user_id = user_id_for(server_secret(served.studio.settings), admin)
    served.studio.store.update_user(user_id, role="admin")
    summary, *_ = client.predict(admin, "30d", api_name="/analytics")
    assert "k = 10" in summary and "hidden" in summary


def test_page_config_is_private_by_default(served):
    assert httpx.get(served.url, timeout=30).status_code == 200
    config = httpx.get(served.url.rstrip("/") + "/config", timeout=30).json()
    assert config.get("analytics_enabled") is False
    assert config.get("run_history") is False
    texts = [c.get("props", {}).get("value") for c in config["components"]]
    assert any(isinstance(t, str) and "Offline demo model" in t for t in texts)
    (state,) = [c["props"] for c in config["components"] if c["type"] == "browserstate"]
    secret = browser_secret(served.studio.settings)
    assert state["storage_key"] == STORAGE_KEY and state["secret"] == secret
    assert server_secret(served.studio.settings).decode() not in json.dumps(config)
    labels = [
        c["props"].get("label")
        for c in config["components"]
        if c["type"]
        in {
            "textbox",
            "dropdown",
            "slider",
            "checkbox",
            "checkboxgroup",
            "radio",
            "number",
            "file",
            "gallery",
        }
    ]
    assert labels and all(labels)


def test_queue_full_is_a_clear_message(served, client, monkeypatch):
    """With the GPU busy and the queue at its limit, one more request is refused clearly."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, wait

    from gempix.errors import ValidationError

    release = threading.Event()

    def busy(*args, **kwargs):
        release.wait(30)
        raise ValidationError("stopped by the test")

    monkeypatch.setattr(served.studio, "generate", busy)
    key = confirmed_user(client)
    arguments = {"user_key": key, "prompt": "a fox", **DEFAULTS}
    running = served.studio.settings.max_batch  # GPU events let this many into the studio
    jobs = [client.submit(**arguments, api_name="/generate") for _ in range(running + 8 + 1)]
    try:
        done, _ = wait(jobs, timeout=30, return_when=FIRST_COMPLETED)
        assert done, "no request was refused"
        assert "Queue is full" in str(next(iter(done)).exception())
    finally:
        release.set()
        wait(jobs, timeout=60)


def test_png_download_is_the_stored_file(alice):
    with open(alice.png, "rb") as handle:
        data = handle.read()
    assert Image.open(io.BytesIO(data)).info["gempix"]


def test_generate_and_upscale_take_named_parameters(client):
    """A gradio_client user sees what to pass: /generate's parameters are the HTTP API's names
    with their types and defaults, the files optional; /upscale names its three."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    generate_api = {p["parameter_name"]: p for p in api["/generate"]["parameters"]}
    assert set(GenerationRequest.model_fields) - {"width", "height"} <= set(generate_api)
    assert {"user_key", "random_seed"} <= set(generate_api)
    assert not [name for name in generate_api if name.startswith("param_")]
    for name in ("init_image", "style_image", "references", "character_strength"):
        assert generate_api[name]["parameter_has_default"], name
        assert generate_api[name]["parameter_default"] is None, name
    assert generate_api["upscaler"]["parameter_default"] == "auto"
    assert generate_api["strength"]["parameter_default"] == 0.6
    assert generate_api["num_images"]["python_type"]["type"] in ("float", "int")
    upscale_api = [p["parameter_name"] for p in api["/upscale"]["parameters"]]
    assert upscale_api == ["user_key", "image_id", "upscaler"]


def test_a_saved_characters_own_strength_is_used_by_the_web_app(client, served, tmp_path):
    key = confirmed_user(client)
    user_id = user_id_for(server_secret(served.studio.settings), key)
    teal = _reference(tmp_path, "teal.png", "teal")
    character = client.predict(key, "Bo", [teal], True, api_name="/create_character")[1]["value"]
    served.studio.characters.update(user_id, character, strength=1.3)  # as the HTTP API can

    def strength_used(**changes) -> float:
        _, selected, *_ = generate(client, key, character=character, **changes)
        return served.studio.images.get(user_id, selected)["params"]["character"]["strength"]

    assert strength_used() == 1.3  # the control left empty: the character's own
    assert strength_used(character_strength=0.4) == 0.4  # a strength given wins


# -- edit ---------------------------------------------------------------------------------------


def edit(client, key: str, source, prompt: str = "a door", **changes):
    values = dict(
        editor={"background": handle_file(str(source)), "layers": [], "composite": None},
        mask=None,
        references=None,
        outpaint="",
        negative_prompt="",
        seed=3,
        random_seed=False,
        steps=2,
        num_images=1,
        strength=1.0,
    )
    values.update(changes)
    return client.predict(user_key=key, prompt=prompt, **values, api_name="/edit")


def test_edit_inpaints_with_a_mask_file_and_outpaints(client, tmp_path):
    from test_edit import TOLERANCE, mask_png, pixels, source_png

    key = confirmed_user(client)
    (tmp_path / "src.png").write_bytes(source_png())
    (tmp_path / "mask.png").write_bytes(mask_png())
    gallery, selected, details, png, jpeg = edit(
        client, key, tmp_path / "src.png", mask=handle_file(str(tmp_path / "mask.png"))
    )
    inside = pixels(mask_png())[..., 0] > 0
    assert abs(pixels(png) - pixels(source_png()))[~inside].max() <= TOLERANCE
    gallery, *_ = edit(client, key, tmp_path / "src.png", outpaint="16:9")
    assert "114×64" in gallery[0]["caption"]
    assert len(client.predict(key, 1, api_name="/list_images")) == 2


def test_a_brush_stroke_in_the_editor_is_the_mask(client, tmp_path):
    """What the editor's brush sends: a layer of magenta paint on transparency. The edit
    changes only where it was painted (headless Chromium cannot paint it: docs/web-app.md)."""
    from test_edit import TOLERANCE, encode, pixels, source_png

    key = confirmed_user(client)
    (tmp_path / "src.png").write_bytes(source_png())
    stroke = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(stroke).line((20, 40, 50, 40), fill=(255, 0, 255, 255), width=12)
    (tmp_path / "stroke.png").write_bytes(encode(stroke))
    editor = {
        "background": handle_file(str(tmp_path / "src.png")),
        "layers": [handle_file(str(tmp_path / "stroke.png"))],
        "composite": None,
    }
    _, _, _, png, _ = edit(client, key, tmp_path / "src.png", editor=editor)
    painted = np.asarray(stroke)[..., 3] > 0
    change = abs(pixels(png) - pixels(source_png())).max(axis=-1)
    assert change[~painted].max() <= TOLERANCE
    assert change[painted].max() > TOLERANCE  # control: the stroke was the mask


def test_a_bad_edit_names_the_field_and_stores_nothing(client, tmp_path):
    key = confirmed_user(client)
    Image.new("RGB", (64, 64), "white").save(tmp_path / "src.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "small.png")
    small = handle_file(str(tmp_path / "small.png"))
    message = failure(lambda: edit(client, key, tmp_path / "src.png", mask=small))
    assert "mask: 32x32 does not match the source's 64x64" in message
    message = failure(lambda: edit(client, key, tmp_path / "src.png"))
    assert "model: tiny cannot edit by instruction" in message
    assert client.predict(key, 1, api_name="/list_images") == []
