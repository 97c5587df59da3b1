"""Content credentials at every front door: each image GemPix writes carries a C2PA manifest
that c2pa.Reader validates (the local CA is "untrusted", nothing else may fail), edits list
their sources as ingredients, and ``gempix verify`` / ``POST /api/v1/verify`` read it all back.

The web app's doors are in test_content_credentials_web.py.
"""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from conftest import confirmed_user, tiny_settings
from PIL import Image
from test_provenance_signing import active, failure_codes, reader_store

from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.batch import run_batch
from gempix.errors import ProvenanceError
from gempix.metadata import AI_SOURCE_TYPE
from gempix.params import EditRequest, GenerationRequest
from gempix.provenance import media_type
from gempix.provenance.samples import photograph
from gempix.server import start_server
from gempix.service import Studio

UNTRUSTED = ["signingCredential.untrusted"]  # the local CA; any other code is a failure


def manifest_of(data: bytes) -> tuple[dict, dict]:
    """(the reader's whole store, the active manifest), after checking it validates."""
    store = reader_store(data, media_type(data))
    assert store["validation_state"] == "Valid"
    assert failure_codes(store) == UNTRUSTED
    return store, active(store)


def assertion(manifest: dict, label: str) -> dict:
    return next(item["data"] for item in manifest["assertions"] if item["label"] == label)


def actions(manifest: dict) -> list[str]:
    return [action["action"] for action in assertion(manifest, "c2pa.actions.v2")["actions"]]


def parent_of(store: dict, manifest: dict) -> dict:
    """The manifest of the ``parentOf`` ingredient (the source's own, kept in the chain)."""
    (parent,) = [i for i in manifest["ingredients"] if i["relationship"] == "parentOf"]
    return store["manifests"][parent["active_manifest"]]


def stripped(data: bytes) -> bytes:
    """Only the pixels, as a PNG: what a chat app or a screenshot tool leaves."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    pixels.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_folder, tiny_models):
    settings = tiny_settings(tmp_path_factory.mktemp("credentials") / "data", tiny_folder)
    with Studio(settings, models=tiny_models) as studio:
        yield studio


@pytest.fixture(scope="module")
def made(studio):
    """One 64 px generation of the local operator, shared by the tests below."""
    (image,) = studio.generate(GenerationRequest("a red fox", seed=3, steps=1)).images
    return image


# -- the core: what every door's images say ------------------------------------------------------


def test_a_generation_is_signed_created_by_ai_with_model_license_and_prompt(studio, made):
    _, manifest = manifest_of(made.path.read_bytes())
    assert manifest["claim_generator_info"][0]["name"] == "GemPix"
    created = assertion(manifest, "c2pa.actions.v2")["actions"][0]
    assert created == {"action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE}
    generation = assertion(manifest, "org.gempix.generation")
    assert generation["model"] == "tiny" and generation["prompt"] == "a red fox"
    assert generation["model_license"]  # the preset's license, whatever it is
    training = assertion(manifest, "c2pa.training-mining")["entries"]
    assert {entry["use"] for entry in training.values()} == {"notAllowed"}


def test_training_assertion_follows_the_users_consent_at_the_time(studio):
    _, user_id = confirmed_user(studio)
    request = GenerationRequest("a lighthouse", seed=1, steps=1)
    before = studio.generate(request, user_id=user_id).images[0]
    studio.privacy.set_consent(user_id, "training", True, "notebook")
    after = studio.generate(request, user_id=user_id).images[0]
    for image, use in [(before, "notAllowed"), (after, "constrained")]:
        manifest = manifest_of(image.path.read_bytes())[1]
        entries = assertion(manifest, "c2pa.training-mining")["entries"].values()
        assert {entry["use"] for entry in entries} == {use}


def test_prompt_stays_out_of_the_manifest_when_metadata_prompt_is_off(
    tmp_path, tiny_folder, tiny_models
):
    settings = tiny_settings(tmp_path / "data", tiny_folder, metadata_prompt=False)
    with Studio(settings, models=tiny_models) as studio:
        image = studio.generate(GenerationRequest("secret-prompt-91c", seed=1, steps=1)).images[0]
    data = image.path.read_bytes()
    assert "prompt" not in assertion(manifest_of(data)[1], "org.gempix.generation")
    assert b"secret-prompt-91c" not in data


def test_a_signing_failure_is_an_error_and_writes_no_image(tmp_path, tiny_folder, tiny_models):
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    settings = tiny_settings(
        tmp_path / "data", tiny_folder, c2pa_cert=str(cert), c2pa_key=str(cert)
    )
    with Studio(settings, models=tiny_models) as studio:
        with pytest.raises(ProvenanceError, match="c2pa_cert"):
            studio.generate(GenerationRequest("a fox", seed=1, steps=1))
    assert not list((tmp_path / "data" / "images").rglob("*.png"))


def test_upscale_is_an_edit_listing_its_source_as_parent(studio, made):
    result = studio.upscale(made.id, width=128, height=128, upscaler="lanczos")
    store, manifest = manifest_of(result.images[0].path.read_bytes())
    assert actions(manifest) == ["c2pa.opened", "c2pa.resized"]
    source = parent_of(store, manifest)
    assert actions(source) == ["c2pa.created"]  # the source's own manifest, kept in the chain


def test_image_to_image_lists_its_init_image_and_style_reference(studio, made):
    request = GenerationRequest(
        "a red fox",
        seed=4,
        steps=2,
        init_image=made.path.read_bytes(),
        strength=0.5,
        style_image=photograph(2, 64),
    )
    image = studio.generate(request).images[0]
    store, manifest = manifest_of(image.path.read_bytes())
    listed = [(item["title"], item["relationship"]) for item in manifest["ingredients"]]
    assert listed == [("init image", "parentOf"), ("style reference", "inputTo")]
    assert actions(manifest) == ["c2pa.opened", "c2pa.edited"]
    edited = assertion(manifest, "c2pa.actions.v2")["actions"][1]
    assert edited["digitalSourceType"] == AI_SOURCE_TYPE
    assert actions(parent_of(store, manifest)) == ["c2pa.created"]  # the init image's chain


def test_an_edit_lists_its_source_as_parent_and_its_mask_and_style_as_inputs(studio, made):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    request = EditRequest(
        "a red door", source_id=made.id, mask=mask, style_image=photograph(2, 64), seed=3, steps=2
    )
    image = studio.edit(request).images[0]
    store, manifest = manifest_of(image.path.read_bytes())
    listed = [(item["title"], item["relationship"]) for item in manifest["ingredients"]]
    assert listed == [
        ("source image", "parentOf"),
        ("mask", "inputTo"),
        ("style reference", "inputTo"),
    ]
    assert actions(manifest) == ["c2pa.opened", "c2pa.edited"]
    assert actions(parent_of(store, manifest)) == ["c2pa.created"]  # the source's own chain


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_jpeg_and_webp_downloads_are_signed_copies_of_the_png(studio, made, tmp_path, fmt):
    path = studio.images.download("local", made.id, fmt, tmp_path)
    data = path.read_bytes()
    assert media_type(data) == f"image/{fmt}"
    store, manifest = manifest_of(data)
    assert actions(manifest) == ["c2pa.opened", "c2pa.transcoded"]
    assert actions(parent_of(store, manifest)) == ["c2pa.created"]


def test_batch_images_are_signed(tmp_path, tiny_folder):
    settings = tiny_settings(tmp_path / "data", tiny_folder)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "a fox", "seed": 1, "steps": 1}) + "\n")
    run_batch(settings, prompts, tmp_path / "out", show_progress=False)
    (output,) = (tmp_path / "out" / "images").glob("*.png")
    _, manifest = manifest_of(output.read_bytes())
    assert actions(manifest) == ["c2pa.created"]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_generate_and_the_three_verify_reports(cli, settings, tmp_path):
    code, out, err = cli(
        "generate", "a red fox", "-m", "tiny", "--data-dir", settings.data_dir,
        "--seed", "2", "--steps", "1", "--size", "512x512", "-o", tmp_path / "fox.png",
    )  # fmt: skip
    assert code == 0, err
    data = (tmp_path / "fox.png").read_bytes()
    manifest_of(data)

    code, out, _ = cli("verify", tmp_path / "fox.png")
    assert code == 0
    assert "C2PA: untrusted." in out and "signingCredential.untrusted" in out
    assert f"IPTC digital source type: {AI_SOURCE_TYPE}" in out
    assert "GemPix's invisible watermark found" in out
    assert "GemPix parameters: present." in out

    (tmp_path / "stripped.png").write_bytes(stripped(data))
    code, out, _ = cli("verify", tmp_path / "stripped.png")
    assert code == 0
    assert "C2PA: absent." in out and "IPTC digital source type: none" in out
    assert "GemPix's invisible watermark found" in out  # the pixels still say so
    assert "GemPix parameters: none." in out

    photograph(2, 512).save(tmp_path / "foreign.jpg", quality=90)
    code, out, _ = cli("verify", tmp_path / "foreign.jpg")
    assert code == 0
    assert "C2PA: absent." in out and "Watermark: none found" in out
    assert out.strip().endswith("This image carries no provenance mark GemPix knows.")

    code, out, _ = cli("verify", tmp_path / "foreign.jpg", "--json")
    assert json.loads(out)["marks"] == []


def test_cli_verify_refuses_what_is_not_an_image(cli, tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    code, _, err = cli("verify", tmp_path / "notes.png")
    assert code == 2 and "image: not a readable image" in err


# -- the HTTP API -------------------------------------------------------------------------------

MAX_UPLOAD = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def api(studio):
    config = ApiConfig(
        rate_requests="100000/hour",
        rate_generate="10000/minute",
        rate_anonymous="100000/minute",
        max_upload_bytes=MAX_UPLOAD,
    )
    server = start_server(create_app(studio, config))
    _, user_id = confirmed_user(studio)
    key, _ = studio.keys.create(user_id, "user", "credentials test")
    client = httpx.Client(
        base_url=server.url + API_PREFIX, timeout=60, headers={"Authorization": f"Bearer {key}"}
    )
    client.user_id = user_id
    try:
        yield client
    finally:
        client.close()
        server.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_api_serves_the_signed_bytes_as_stored(api, studio):
    response = api.post(
        "/generate",
        json={"prompt": "a fox", "seed": 5, "steps": 1},
        headers={"Accept": "image/png"},
    )
    assert response.status_code == 200, response.text
    manifest_of(response.content)
    (image,) = api.post("/generate", json={"prompt": "a fox", "seed": 6, "steps": 1}).json()[
        "images"
    ]
    download = api.get(image["url"])
    stored = studio.images.get(api.user_id, image["id"])["file_path"]
    assert download.content == open(stored, "rb").read()  # served as stored, not re-encoded
    manifest_of(download.content)


def test_api_image_to_image_chains_to_the_sources_manifest(api, made):
    body = {"prompt": "a fox", "seed": 2, "steps": 2, "init_image": b64(made.path.read_bytes())}
    response = api.post("/generate", json=body, headers={"Accept": "image/png"})
    assert response.status_code == 200, response.text
    store, manifest = manifest_of(response.content)
    assert actions(manifest) == ["c2pa.opened", "c2pa.edited"]
    assert actions(parent_of(store, manifest)) == ["c2pa.created"]  # the upload's own manifest


def test_api_verify_reports_every_mark(api, made):
    response = api.post("/verify", json={"image": b64(made.path.read_bytes())})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["c2pa"]["status"] == "untrusted"
    assert report["c2pa"]["codes"] == UNTRUSTED
    assert report["c2pa"]["chain"][0]["claim_generator"].startswith("GemPix")
    assert report["ai_disclosed"] is True and report["gempix_params"]["seed"] == 3
    assert report["marks"] == ["c2pa", "iptc", "gempix_params"]  # 64 px: too small to detect


def test_api_verify_of_a_foreign_image_says_none(api):
    buffer = io.BytesIO()
    photograph(3, 300).save(buffer, "WEBP")
    report = api.post("/verify", json={"image": b64(buffer.getvalue())}).json()
    assert report["marks"] == [] and report["c2pa"]["status"] == "absent"
    assert report["lines"][-1] == "This image carries no provenance mark GemPix knows."


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"image": b64(b"just some text")}, 400, "image: not a readable image"),
        ({"image": "%%%"}, 400, "image: not valid base64"),
        ({"image": b64(b"\x00" * (MAX_UPLOAD + 10))}, 413, "image: larger than"),
        ({}, 400, "image"),
    ],
)
def test_api_verify_refuses_bad_uploads_clearly(api, body, status, message):
    response = api.post("/verify", json=body)
    assert response.status_code == status
    assert response.json()["ok"] is False and message in response.json()["error"]


def test_api_verify_needs_a_key(api):
    response = httpx.post(api.build_request("POST", "/verify").url, json={"image": b64(b"x")})
    assert response.status_code == 401
