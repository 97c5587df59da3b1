"""Content credentials at the web door: the app, launched on a localhost port and driven over
HTTP, serves signed bytes as they are (Results, Gallery, the JPEG download), and its Verify
tab reports the marks of any upload and keeps nothing of it."""

from __future__ import annotations

import pytest
from conftest import files_holding, png_bytes
from gradio_client import handle_file
from test_app import client, confirmed_user, failure, generate, same_cache, served  # noqa: F401
from test_content_credentials import actions, manifest_of


@pytest.fixture(scope="module")
def made(client):  # noqa: F811
    """One user's 64 px image as the Create tab returns it: (key, results, png, jpeg)."""
    key = confirmed_user(client)
    results, _, _, png, jpeg = generate(client, key, prompt="a red fox", seed=11)
    return key, results, png, jpeg


def test_results_png_and_jpeg_downloads_are_signed(made):
    _, results, png, jpeg = made
    assert open(results[0]["image"], "rb").read() == open(png, "rb").read()
    _, manifest = manifest_of(open(png, "rb").read())
    assert actions(manifest) == ["c2pa.created"]
    _, manifest = manifest_of(open(jpeg, "rb").read())
    assert actions(manifest) == ["c2pa.opened", "c2pa.transcoded"]


def test_gallery_serves_the_stored_signed_bytes(client, served, made):  # noqa: F811
    key, *_ = made
    items, *_ = client.predict(key, 1, api_name="/history")
    (item,) = items
    served_bytes = open(item["image"], "rb").read()
    (row,) = served.studio.images.rows(served.studio.privacy.open_user(key), limit=1)
    assert served_bytes == open(row["file_path"], "rb").read()  # no re-encode on the way
    manifest_of(served_bytes)


def test_verify_tab_reports_a_gempix_image(client, made):  # noqa: F811
    _, _, png, _ = made
    report = client.predict(handle_file(png), api_name="/verify")
    assert "C2PA: untrusted" in report and "signingCredential" in report
    assert "trainedAlgorithmicMedia" in report and "GemPix parameters: present" in report
    assert "**Signed image:** GemPix image" in report


def test_verify_tab_on_a_foreign_upload_says_none_and_keeps_nothing(client, served):  # noqa: F811
    sentinel = "verify-upload-sentinel-5d1e"
    path = served.cache.parent / "foreign.png"
    path.write_bytes(png_bytes((300, 200), "teal", text=sentinel))
    report = client.predict(handle_file(str(path)), api_name="/verify")
    assert "C2PA: absent" in report and "no provenance mark GemPix knows" in report
    assert files_holding(served.cache, sentinel) == []  # the upload was deleted after reading


def test_verify_tab_refuses_a_non_image(client, served):  # noqa: F811
    path = served.cache.parent / "notes.png"
    path.write_text("not an image at all")
    message = failure(lambda: client.predict(handle_file(str(path)), api_name="/verify"))
    assert "image: not a readable image" in message
