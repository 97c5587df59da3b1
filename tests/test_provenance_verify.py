"""verify_image: a GemPix image, the same image stripped of metadata, and a foreign image."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from gempix.errors import ValidationError
from gempix.export import export_image
from gempix.metadata import AI_SOURCE_TYPE, save_png
from gempix.provenance import GEMPIX_IDENTIFIER, ManifestFacts, Provenance, verify_image
from gempix.provenance.samples import photograph

PARAMS = {"prompt": "a red fox in snow", "model": "sd-turbo", "seed": 7, "ai_generated": True}
FACTS = ManifestFacts(model="sd-turbo", prompt="a red fox in snow", include_prompt=True)


@pytest.fixture(scope="module")
def gempix_png(tmp_path_factory):
    """An image made the way the service will: watermark, encode with metadata, sign last."""
    folder = tmp_path_factory.mktemp("verify")
    provenance = Provenance.from_paths(folder / "provenance")
    picture = provenance.watermark(photograph(1, 512))
    path = save_png(
        picture,
        folder / "image.png",
        PARAMS,
        include_prompt=True,
        finish=lambda data: provenance.sign(data, FACTS),
    )
    return provenance, path


def test_gempix_image_reports_every_mark(gempix_png):
    _, path = gempix_png
    report = verify_image(path)
    assert report.marks == ["c2pa", "iptc", "watermark", "gempix_params"]
    assert report.c2pa.status == "untrusted" and report.c2pa.codes == (
        "signingCredential.untrusted",
    )
    (manifest,) = report.c2pa.chain
    assert manifest.claim_generator.startswith("GemPix ")
    assert manifest.digital_source_types == (AI_SOURCE_TYPE,)
    assert manifest.gempix["prompt"] == "a red fox in snow"
    assert report.ai_disclosed and report.iptc_source_type == AI_SOURCE_TYPE
    assert report.watermark.found and report.gempix_watermark
    assert report.gempix_params == PARAMS
    assert (report.format, report.width, report.height) == ("PNG", 512, 512)
    text = "\n".join(report.lines())
    assert "C2PA: untrusted" in text and "GemPix's invisible watermark found" in text
    watermark = json.loads(json.dumps(report.to_dict()))["watermark"]
    assert watermark["identifier"] == "47505831" and watermark["gempix"] is True


def test_stripped_copy_still_carries_the_watermark(gempix_png):
    _, path = gempix_png
    with Image.open(path) as image:
        pixels_only = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    pixels_only.save(buffer, "JPEG", quality=80)  # what a chat app or social network does
    report = verify_image(buffer.getvalue())
    assert report.marks == ["watermark"]
    assert report.c2pa.status == "absent" and report.iptc_source_type is None
    assert report.gempix_params is None and not report.ai_disclosed
    assert report.watermark.identifier == GEMPIX_IDENTIFIER


def test_foreign_image_says_it_carries_nothing():
    buffer = io.BytesIO()
    photograph(2, 400).save(buffer, "PNG")
    report = verify_image(buffer.getvalue())
    assert report.marks == []
    assert report.c2pa.status == "absent" and not report.watermark.found
    assert report.lines()[-1] == "This image carries no provenance mark GemPix knows."


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_formats_without_c2pa_report_absent(fmt):
    buffer = io.BytesIO()
    photograph(3, 300).save(buffer, fmt)
    report = verify_image(buffer.getvalue())
    assert report.c2pa.status == "absent" and report.marks == []


def test_signed_jpeg_download_keeps_disclosure_and_manifest(gempix_png, tmp_path):
    provenance, path = gempix_png
    download = provenance.sign(export_image(path, "jpeg", 85), FACTS)
    report = verify_image(download)
    assert report.format == "JPEG"
    assert report.marks == ["c2pa", "iptc", "watermark"]  # the gempix chunk is PNG-only
    assert report.c2pa.status == "untrusted"


def test_changed_pixels_make_the_manifest_invalid(gempix_png):
    provenance, path = gempix_png
    data = bytearray(provenance.sign(export_image(path, "jpeg", 85), FACTS))
    data[data.rindex(b"\xff\xda") + 300] ^= 0x01  # one bit of the picture, still decodable
    report = verify_image(bytes(data))
    assert report.c2pa.status == "invalid"
    assert "assertion.dataHash.mismatch" in report.c2pa.codes
    assert report.watermark.found  # the watermark does not care about one bit


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, world", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable image"),
    ],
)
def test_hostile_input_is_a_validation_error(data, message):
    with pytest.raises(ValidationError, match=message):
        verify_image(data)


def test_forged_manifest_bytes_are_reported_invalid_not_crashing():
    buffer = io.BytesIO()
    photograph(0, 64).save(buffer, "PNG")
    png = buffer.getvalue()
    # a caBX chunk (where PNG carries C2PA) holding garbage, before IEND
    junk = b"\x00\x00\x00\x10caBX" + b"\x00jumbfgarbage!!!" + b"\x00\x00\x00\x00"
    forged = png[:-12] + junk + png[-12:]
    report = verify_image(forged)
    assert report.c2pa.status == "invalid"
