"""The CLI: output locations, progress, and the exit-code contract (0 ok, 2 input, 1 internal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gempix.metadata import read_params
from gempix.service import Studio


@pytest.fixture
def data_dir(settings):
    return str(settings.data_dir)


def test_generate_to_folder(cli, tmp_path, data_dir):
    code, out, err = cli(
        "generate",
        "a red fox",
        "--model",
        "tiny",
        "--data-dir",
        data_dir,
        "--seed",
        "5",
        "--num",
        "2",
        "-o",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, seed in zip(lines, (5, 6), strict=True):
        path, shown_seed, size = line.split("  ")
        assert shown_seed == f"seed={seed}" and size == "64x64"
        assert read_params(path)["seed"] == seed


def test_generate_to_file_numbers_batches(cli, tmp_path, data_dir):
    target = tmp_path / "pics" / "fox.png"
    code, out, _ = cli(
        "generate",
        "fox",
        "-m",
        "tiny",
        "--data-dir",
        data_dir,
        "--num",
        "2",
        "--aspect",
        "16:9",
        "--resolution",
        "2k",
        "-o",
        str(target),
    )
    assert code == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["fox-1.png", "fox-2.png"]
    assert Image.open(target.parent / "fox-1.png").size == (2560, 1440)


def test_single_file_output(cli, tmp_path, data_dir):
    target = tmp_path / "one.png"
    code, out, _ = cli("generate", "fox", "-m", "tiny", "--data-dir", data_dir, "-o", str(target))
    assert code == 0 and out.startswith(str(target))


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", ""], "Error: prompt: must not be empty."),
        (["generate", "x", "--size", "65x64"], "width: 65 is not a multiple of 8"),
        (["generate", "x", "--size", "big"], "size: 'big' is not WIDTHxHEIGHT"),
        (["generate", "x", "--steps", "0"], "steps: 0 is out of range"),
        (["generate", "x", "--init", "/nope.png"], "init_image: no such file"),
        (["generate", "x", "--aspect", "5:4"], "Invalid value for '--aspect'"),
        (["generate"], "Missing argument 'PROMPT'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["generate", "x", "--device", "tpu"], "Invalid value 'tpu' for --device"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, data_dir, args, message):
    code, out, err = cli(
        *args,
        *(
            ["--model", "tiny", "--data-dir", data_dir]
            if args[0] == "generate" and len(args) > 1
            else []
        ),
    )
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_internal_error_exits_1_without_traceback(cli, data_dir, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Studio, "generate", broken)
    code, _, err = cli("generate", "x", "-m", "tiny", "--data-dir", data_dir)
    assert code == 1
    assert err.strip() == "Internal error (RuntimeError). Run gempix --debug ... for details."


def test_models_lists_presets_with_licenses(cli, data_dir):
    code, out, _ = cli("models", "--data-dir", data_dir)
    assert code == 0
    for name in ("sd-turbo", "sdxl-turbo", "sdxl", "flux-schnell", "tiny"):
        assert f"\n{name} " in out or out.startswith(name)
    assert "License: Apache-2.0" in out and "Stability AI Community License" in out
    assert "\ntiny                 64x64    steps 2   downloaded" in out


def test_download_tiny_builds_it(cli, tmp_path):
    code, out, _ = cli("download", "tiny", "--data-dir", str(tmp_path / "d"))
    assert code == 0
    assert (tmp_path / "d" / "models" / "tiny" / "model_index.json").is_file()


def test_download_offline_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("download", "sd-turbo", "--data-dir", str(tmp_path / "d"))
    assert code == 2
    assert "Hugging Face Hub is unreachable" in err


def test_python_dash_m_and_help(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("generate", "models", "download", "serve"):
        assert command in out


def test_every_request_field_is_a_generate_option_with_the_models_help_and_default():
    from gempix.cli.generate import generate, option_name
    from gempix.params import GenerationRequest, field_choices

    options = {name: param for param in generate.params for name in param.opts}
    for name, field in GenerationRequest.model_fields.items():
        if name == "prompt":
            assert "prompt" in options
            continue
        option = options[option_name(name)]
        if name not in ("width", "height"):  # both are --size WxH
            assert option.help == field.description, name
            unset = option.default in (None, ()) or not option.show_default  # the model's
            assert option.default == field.default or unset, name
    assert tuple(options["--upscaler"].type.choices) == field_choices("upscaler")


def test_generate_acts_for_the_account_of_a_user_key(cli, settings, tmp_path):
    from conftest import confirmed_user

    from gempix.privacy.identity import LOCAL_USER, new_user_key

    with Studio(settings) as studio:
        key, user_id = confirmed_user(studio)
    key_file = tmp_path / "key.txt"
    key_file.write_text(key + "\n")
    data = ("--data-dir", settings.data_dir, "-m", "tiny")
    code, out, err = cli("generate", "a fox", "--seed", 3, "--user-key-file", key_file, *data)
    assert code == 0, err
    code, _, err = cli("generate", "a fox", "--user-key", new_user_key(), *data)
    assert code == 2 and "Unknown user key" in err
    with Studio(settings) as studio:
        (row,) = studio.images.rows(user_id, limit=10)
        assert row["seed"] == 3 and row["front_door"] == "cli" and out.startswith(row["file_path"])
        assert studio.images.rows(LOCAL_USER, limit=10) == []


# -- edit and info ----------------------------------------------------------------------------


def test_edit_inpaints_and_outpaints(cli, tmp_path, data_dir):
    from test_edit import TOLERANCE, mask_png, pixels, source_png

    (tmp_path / "src.png").write_bytes(source_png())
    (tmp_path / "mask.png").write_bytes(mask_png())
    args = ("-m", "tiny", "--data-dir", data_dir, "--seed", "2")
    code, out, err = cli(
        "edit", tmp_path / "src.png", "a door", "--mask", tmp_path / "mask.png", *args
    )
    assert code == 0, err
    path, seed, size = out.strip().split("  ")
    inside = pixels(mask_png())[..., 0] > 0
    assert abs(pixels(path) - pixels(source_png()))[~inside].max() <= TOLERANCE
    image_id = Path(path).stem
    code, out, err = cli("edit", image_id, "sky", "--outpaint", "16:9", *args)
    assert code == 0, err
    assert out.strip().endswith("114x64")
    assert read_params(out.split("  ")[0])["edit"]["source"]["generation_id"] == image_id


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--mask", "small.png"), "Error: mask: 32x32 does not match the source's 64x64"),
        ((), "Error: model: tiny cannot edit by instruction"),
        (
            (
                "--ref",
                "src.png",
            )
            * 4,
            "Error: references: 4 given; at most 3",
        ),
        (("--extend", "1,2"), "extend: '1,2' is not LEFT,TOP,RIGHT,BOTTOM"),
    ],
)
def test_bad_edits_exit_2_naming_the_field(cli, tmp_path, data_dir, extra, message, monkeypatch):
    from test_edit import source_png

    monkeypatch.chdir(tmp_path)
    (tmp_path / "src.png").write_bytes(source_png())
    Image.new("L", (32, 32), 255).save(tmp_path / "small.png")
    code, out, err = cli("edit", "src.png", "x", "-m", "tiny", "--data-dir", data_dir, *extra)
    assert code == 2 and message in err, err
    assert not (tmp_path / "data" / "images").exists()


def test_info_prints_parameters(cli, tmp_path):
    from test_pnginfo import A1111, png

    (tmp_path / "a.png").write_bytes(png(parameters=A1111))
    code, out, _ = cli("info", tmp_path / "a.png")
    assert code == 0 and "seed: 1234" in out and "model: dreamshaper_8" in out
    (tmp_path / "b.png").write_bytes(png(comment="hi"))
    code, out, _ = cli("info", tmp_path / "b.png")
    assert code == 0 and out.startswith("image: no generation parameters found")
    (tmp_path / "c.png").write_bytes(b"nope")
    code, _, err = cli("info", tmp_path / "c.png")
    assert code == 2 and "image: not a readable image" in err
