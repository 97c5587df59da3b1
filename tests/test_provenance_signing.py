"""C2PA signing: what c2pa.Reader sees in a GemPix-signed PNG, JPEG and WebP."""

from __future__ import annotations

import dataclasses
import io
import json

import c2pa
import pytest
from PIL import Image

from gempix import __version__
from gempix.errors import ProvenanceError
from gempix.metadata import AI_SOURCE_TYPE, save_png
from gempix.provenance import Ingredient, ManifestFacts, local_credentials, sign, verify_image
from gempix.provenance.reading import read_c2pa
from gempix.provenance.samples import photograph

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
FACTS = ManifestFacts(
    model="sd-turbo",
    model_license="Stability AI Community License",
    prompt="a lighthouse at dawn",
    include_prompt=True,
)


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return local_credentials(tmp_path_factory.mktemp("keys"))


def encoded(fmt: str, size: int = 128) -> bytes:
    buffer = io.BytesIO()
    photograph(1, size).save(buffer, fmt)
    return buffer.getvalue()


def reader_store(data: bytes, media_type: str, anchors: str | None = None) -> dict:
    """The manifest store exactly as c2pa.Reader reports it."""
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors:
        settings["trust"] = {"user_anchors": anchors}
    context = c2pa.Context(c2pa.Settings.from_dict(settings))
    with c2pa.Reader(media_type, io.BytesIO(data), context=context) as reader:
        return json.loads(reader.json())


def failure_codes(store: dict) -> list[str]:
    return [item["code"] for item in store["validation_results"]["activeManifest"]["failure"]]


def active(store: dict) -> dict:
    return store["manifests"][store["active_manifest"]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_signed_image_validates_with_c2pa_reader(fmt, credentials):
    original = encoded(fmt)
    signed = sign(original, FACTS, credentials)
    store = reader_store(signed, FORMATS[fmt])
    assert store["validation_state"] == "Valid"
    assert failure_codes(store) == ["signingCredential.untrusted"]  # local CA: no integrity error
    manifest = active(store)
    assert manifest["claim_generator_info"][0]["name"] == "GemPix"
    assert manifest["claim_generator_info"][0]["version"] == __version__
    assertions = {item["label"]: item["data"] for item in manifest["assertions"]}
    created = assertions["c2pa.actions.v2"]["actions"][0]
    assert created == {"action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE}
    assert assertions["org.gempix.generation"] == {
        "model": "sd-turbo",
        "model_license": "Stability AI Community License",
        "prompt": "a lighthouse at dawn",
    }
    entries = assertions["c2pa.training-mining"]["entries"]
    assert {entry["use"] for entry in entries.values()} == {"notAllowed"}
    with Image.open(io.BytesIO(signed)) as after, Image.open(io.BytesIO(original)) as before:
        assert after.format == fmt  # same format, same pixels: only the manifest was added
        assert after.tobytes() == before.tobytes()


def test_local_ca_is_trusted_once_a_reader_trusts_it(credentials):
    signed = sign(encoded("PNG"), FACTS, credentials)
    ca_pem = credentials.chain_pem.split(b"-----END CERTIFICATE-----\n", 1)[1].decode()
    store = reader_store(signed, "image/png", anchors=ca_pem)
    assert store["validation_state"] == "Trusted"
    assert read_c2pa(signed, "image/png", trust_anchors=ca_pem).status == "valid"


def test_prompt_and_training_follow_the_facts(credentials):
    private = dataclasses.replace(FACTS, include_prompt=False, training_allowed=True)
    signed = sign(encoded("PNG"), private, credentials)
    assert b"lighthouse" not in signed
    assertions = {
        a["label"]: a["data"] for a in active(reader_store(signed, "image/png"))["assertions"]
    }
    assert "prompt" not in assertions["org.gempix.generation"]
    uses = {entry["use"] for entry in assertions["c2pa.training-mining"]["entries"].values()}
    assert uses == {"constrained"}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_edit_manifest_lists_its_parent_ingredient(fmt, credentials):
    source = sign(encoded("PNG"), FACTS, credentials)
    facts = dataclasses.replace(
        FACTS,
        ingredients=(Ingredient(source, "source.png"),),
        action="c2pa.resized",
        ai_edit=False,
    )
    edited = sign(encoded(fmt, 256), facts, credentials)
    store = reader_store(edited, FORMATS[fmt])
    assert failure_codes(store) == ["signingCredential.untrusted"]
    manifest = active(store)
    (ingredient,) = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == "source.png"
    parent = store["manifests"][ingredient["active_manifest"]]
    parent_actions = next(a for a in parent["assertions"] if a["label"] == "c2pa.actions.v2")
    assert parent_actions["data"]["actions"][0]["action"] == "c2pa.created"
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert [a["action"] for a in actions["data"]["actions"]] == ["c2pa.opened", "c2pa.resized"]
    chain = verify_image(edited).c2pa.chain
    assert [m.actions[0] for m in chain] == ["c2pa.opened", "c2pa.created"]


def test_a_creation_lists_the_pictures_a_model_was_shown(credentials):
    reference = Ingredient(encoded("PNG", 64), "style reference", "inputTo")
    signed = sign(encoded("PNG"), dataclasses.replace(FACTS, ingredients=(reference,)), credentials)
    store = reader_store(signed, "image/png")
    assert failure_codes(store) == ["signingCredential.untrusted"]
    manifest = active(store)
    assert [(i["title"], i["relationship"]) for i in manifest["ingredients"]] == [
        ("style reference", "inputTo")
    ]
    assert "thumbnail" not in manifest["ingredients"][0]  # no copy of a user's picture
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert [a["action"] for a in actions["data"]["actions"]] == ["c2pa.created"]


def test_ingredient_rules_are_checked():
    with pytest.raises(ValueError, match="relationship"):
        Ingredient(b"", "x", "siblingOf")
    parent = Ingredient(b"", "a")
    with pytest.raises(ValueError, match="at most one parentOf"):
        dataclasses.replace(FACTS, ingredients=(parent, parent))


def _pixel_data_offset(data: bytes, fmt: str) -> int:
    """An offset well inside the compressed picture (not in the manifest)."""
    if fmt == "PNG":
        return data.index(b"IDAT") + 64
    if fmt == "JPEG":
        return data.rindex(b"\xff\xda") + 64
    return data.index(b"VP8") + 64


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_changed_byte_of_the_picture_fails_validation(fmt, credentials):
    signed = bytearray(sign(encoded(fmt), FACTS, credentials))
    offset = _pixel_data_offset(bytes(signed), fmt)
    signed[offset] ^= 0x01 if signed[offset] not in (0xFE, 0xFF) else 0x02
    store = reader_store(bytes(signed), FORMATS[fmt])
    assert store["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in failure_codes(store)
    check = read_c2pa(bytes(signed), FORMATS[fmt])
    assert check.status == "invalid" and "assertion.dataHash.mismatch" in check.codes


def test_signing_failures_raise_and_never_return_unsigned_bytes(credentials, tmp_path):
    with pytest.raises(ProvenanceError, match="PNG, JPEG or WebP"):
        sign(b"GIF89a" + bytes(64), FACTS, credentials)
    with pytest.raises(ProvenanceError, match="C2PA signing failed"):
        sign(encoded("PNG")[:200], FACTS, credentials)  # truncated
    broken_key = dataclasses.replace(credentials, key_pem=b"-----BEGIN PRIVATE KEY-----\nAA==\n")
    with pytest.raises(ProvenanceError, match="C2PA signing failed"):
        sign(encoded("PNG"), FACTS, broken_key)
    other = local_credentials(tmp_path / "other")
    mismatched = dataclasses.replace(credentials, key_pem=other.key_pem)
    with pytest.raises(ProvenanceError, match="signature does not match"):
        sign(encoded("PNG"), FACTS, mismatched)
    # save_png with a failing finish step writes nothing at all
    target = tmp_path / "images" / "x.png"
    with pytest.raises(ProvenanceError):
        save_png(
            photograph(0, 64),
            target,
            {"model": "tiny"},
            include_prompt=False,
            finish=lambda data: sign(data, FACTS, mismatched),
        )
    assert not target.exists()


def test_save_png_signs_last(credentials, tmp_path):
    path = save_png(
        photograph(0, 64),
        tmp_path / "a.png",
        {"prompt": "secret words", "model": "tiny"},
        include_prompt=True,
        finish=lambda data: sign(data, FACTS, credentials),
    )
    check = read_c2pa(path.read_bytes(), "image/png")
    assert check.status == "untrusted" and check.codes == ("signingCredential.untrusted",)
    with Image.open(path) as png:  # the PNG metadata written before signing is still there
        assert json.loads(png.info["gempix"])["prompt"] == "secret words"
