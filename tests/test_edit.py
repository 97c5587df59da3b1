"""Editing through the library: inpaint keeps what is outside the mask, outpaint keeps the
original area, the metadata makes the same pixels again, bad pictures fail naming the field
with nothing stored, and the sources go with export and erasure."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gempix.errors import ValidationError
from gempix.metadata import read_params
from gempix.params import EditRequest, request_from_params

# 8-bit levels "the source's own pixels" may differ by in the saved result: 2 for blending, plus
# the invisible watermark every saved image carries (at most 6, tests/test_provenance_watermark.py)
TOLERANCE = 2 + 6


def source_png(size=(64, 64)) -> bytes:
    """A recognisable source: a gradient with a square, as PNG bytes."""
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    y = np.linspace(0, 255, size[1], dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], y[:, None], 128 + 0 * x[None, :]), axis=-1)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    ImageDraw.Draw(image).rectangle((8, 8, 24, 24), fill=(250, 20, 20))
    return encode(image)


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def mask_png(size=(64, 64), box=(32, 16, 56, 48)) -> bytes:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return encode(mask)


def pixels(source) -> np.ndarray:
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    return np.asarray(image.convert("RGB")).astype(np.int16)


def test_inpaint_changes_only_the_masked_area(studio):
    source, mask = source_png(), mask_png()
    result = studio.edit(EditRequest("a red door", source=source, mask=mask, seed=3, steps=2))
    image = result.images[0]
    before, after = pixels(source), pixels(image.path)
    inside = pixels(mask)[..., 0] > 0
    assert after.shape == before.shape
    assert np.abs(after - before)[~inside].max() <= TOLERANCE
    assert np.abs(after - before)[inside].mean() > 10  # the tiny model redrew it (noise)
    edit = image.params["edit"]
    assert edit["source"]["sha256"] and edit["mask_sha256"] and edit["source"]["width"] == 64


def test_outpaint_keeps_the_original_area(studio):
    source = source_png()
    result = studio.edit(EditRequest("more sky", source=source, outpaint="16:9", seed=1))
    image = result.images[0]
    after = pixels(image.path)
    assert (image.width, image.height) == (114, 64)  # 64 * 16 / 9, rounded up
    left = image.params["edit"]["outpaint_pixels"][0]
    assert np.abs(after[:, left : left + 64] - pixels(source)).max() <= TOLERANCE
    by_side = studio.edit(EditRequest("floor", source=source, outpaint_pixels=(0, 0, 0, 32)))
    extended = pixels(by_side.images[0].path)
    assert extended.shape[:2] == (96, 64)
    assert np.abs(extended[:64] - pixels(source)).max() <= TOLERANCE


def test_edit_regenerates_from_its_metadata_with_the_same_inputs(studio):
    source, mask = source_png(), mask_png()
    first = studio.edit(EditRequest("a cat", source=source, mask=mask, seed=9)).images[0]
    params = read_params(first.path)
    with pytest.raises(ValidationError, match=r"^source: .*pass the same file"):
        request_from_params(params)
    with pytest.raises(ValidationError, match=r"^mask: "):
        request_from_params(params, {"source": source})
    other = encode(Image.new("RGB", (64, 64), "blue"))
    with pytest.raises(ValidationError, match=r"^source: the image you passed is not"):
        request_from_params(params, {"source": other, "mask": mask})
    again = studio.edit(request_from_params(params, {"source": source, "mask": mask}))
    assert np.array_equal(pixels(first.path), pixels(again.images[0].path))


def test_editing_ones_own_generation_names_it(studio):
    from gempix.params import GenerationRequest

    made = studio.generate(GenerationRequest("a house", seed=2)).images[0]
    edited = studio.edit(EditRequest("a tree", source_id=made.id, mask=mask_png(), seed=2))
    image = edited.images[0]
    assert image.params["edit"]["source"]["generation_id"] == made.id
    assert studio.store.get_generation("local", image.id)["source_id"] == made.id
    again = studio.edit(request_from_params(read_params(image.path), {"mask": mask_png()}))
    assert np.array_equal(pixels(image.path), pixels(again.images[0].path))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mask": mask_png((32, 32))}, r"^mask: 32x32 does not match the source's 64x64"),
        ({"mask": encode(Image.new("L", (64, 64), 0))}, r"^mask: the mask is empty"),
        ({"source": b"not an image"}, r"^source: not a readable image"),
        ({}, r"^model: tiny cannot edit by instruction"),
        ({"outpaint": "1:1"}, r"^outpaint: the source is already 1:1"),
    ],
)
def test_bad_pictures_name_the_field_and_store_nothing(studio, fields, message):
    request = EditRequest("x", **{"source": source_png(), **fields})
    with pytest.raises(ValidationError, match=message):
        studio.edit(request)
    assert studio.store.count_generations("local") == 0
    assert not (studio.settings.images_dir / "local").exists()


def test_request_rules_name_the_field():
    with pytest.raises(ValidationError, match=r"^references: 4 given; at most 3"):
        EditRequest("x", source=b"x", references=(b"1", b"2", b"3", b"4"))
    with pytest.raises(ValidationError, match=r"^source: give one source"):
        EditRequest("x")
    with pytest.raises(ValidationError, match=r"^aspect: an edit keeps"):
        EditRequest("x", source=b"x", aspect="16:9")


def test_a_decompression_bomb_is_refused(studio):
    bomb = encode(Image.new("L", (5000, 5000), 0))  # small file, 25 megapixels
    with pytest.raises(ValidationError, match=r"^source: 5000x5000 is too large"):
        studio.edit(EditRequest("x", source=bomb, mask=mask_png()))


def test_a_painted_layer_on_transparency_is_a_mask(studio):
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((10, 10, 30, 30), fill=(255, 0, 255, 255))
    image = studio.edit(EditRequest("x", source=source_png(), mask=encode(layer))).images[0]
    inside = np.asarray(layer)[..., 3] > 0
    assert np.abs(pixels(image.path) - pixels(source_png()))[~inside].max() <= TOLERANCE


def test_sources_are_exported_and_erased_with_the_image(studio, tmp_path):
    from tests.conftest import confirmed_user

    key, user_id = confirmed_user(studio)
    image = studio.edit(
        EditRequest("x", source=source_png(), mask=mask_png()), user_id=user_id
    ).images[0]
    folder = studio.settings.images_dir / user_id / "sources" / image.id
    assert sorted(p.name for p in folder.iterdir()) == ["mask.png", "source.png"]
    exported = studio.privacy.export(user_id, tmp_path / "export.zip")
    with zipfile.ZipFile(exported.path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert f"sources/{image.id}/source.png" in names, names
    assert not manifest["missing"]
    studio.images.delete(user_id, image.id)
    assert not folder.exists()


@pytest.mark.parametrize("model", ["tiny-qwen-image-edit", "tiny-flux2-klein"])
def test_instruction_edit_with_references_regenerates(family_studio, model):
    studio = family_studio(model)
    source, reference = source_png(), encode(Image.new("RGB", (64, 64), "green"))
    request = EditRequest("make it red", source=source, references=(reference,), seed=4, steps=2)
    image = studio.edit(request).images[0]
    assert (image.width, image.height) == (64, 64)
    params = read_params(image.path)
    assert len(params["edit"]["references_sha256"]) == 1 and not params["edit"]["mask_sha256"]
    with pytest.raises(ValidationError, match=r"^references: "):
        request_from_params(params, {"source": source})
    again = studio.edit(request_from_params(params, {"source": source, "references": [reference]}))
    assert np.array_equal(pixels(image.path), pixels(again.images[0].path))
