"""The privacy commands: each right from the shell, with the exit-code contract
(0 ok; 2 bad input such as an unknown key, as one line without a traceback; 1 aborted)."""

from __future__ import annotations

import json
import zipfile

import pytest

from gempix.privacy import UNKNOWN_KEY, open_user
from gempix.privacy.identity import new_user_key
from gempix.privacy.policy import load_policy
from gempix.service import Studio
from gempix.settings import Settings


@pytest.fixture
def data(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def key(cli, data):
    code, out, err = cli("user", "create", "--data-dir", data)
    assert code == 0, err
    assert "shown only this once" in err
    (line,) = out.splitlines()  # stdout holds the key and nothing else: `> key.txt` works
    return line


def studio_for(data: str) -> Studio:
    return Studio(Settings.load({}, data_dir=data))


def user_id(data: str, key: str) -> str:
    with studio_for(data) as studio:
        return open_user(studio, key)


def add_generation(data: str, key: str, prompt: str) -> str:
    with studio_for(data) as studio:
        uid = open_user(studio, key)
        return studio.store.record_generation({"user_id": uid, "prompt": prompt})


def test_user_create_prints_a_key_that_opens_the_account(cli, data, key):
    assert key.startswith("gpu_")
    code, out, _ = cli("user", "show", "--user-key", key, "--data-dir", data)
    assert code == 0
    assert "training: not granted (default)" in out and "analytics: granted (default)" in out
    assert "privacy policy has changed" in out  # not acknowledged yet
    code, out, _ = cli("policy", "--ack", "--user-key", key, "--data-dir", data)
    assert code == 0 and "Acknowledged" in out
    code, out, _ = cli("user", "show", "--json", "--user-key", key, "--data-dir", data)
    shown = json.loads(out)
    assert shown["needs_notice"] is False and shown["consents"]["training"]["granted"] is False


def test_user_role_makes_an_admin(cli, data, key):
    code, out, _ = cli("user", "role", "admin", "--user-key", key, "--data-dir", data)
    assert (code, out.strip()) == (0, "Role set: admin.")
    with studio_for(data) as studio:
        assert studio.store.get_user(open_user(studio, key))["role"] == "admin"
    code, _, err = cli("user", "role", "owner", "--user-key", key, "--data-dir", data)
    assert code == 2 and "'owner' is not one of 'user', 'admin'" in err
    code, _, err = cli("user", "role", "admin", "--user-key", "gpu_nope", "--data-dir", data)
    assert code == 2 and UNKNOWN_KEY in err


def test_consent_and_training_manifest(cli, data, key, tmp_path):
    image = add_generation(data, key, "a red fox")
    manifest = tmp_path / "train.jsonl"
    code, out, _ = cli("consent", "grant", "training", "--user-key", key, "--data-dir", data)
    assert code == 0 and out.startswith("training: granted since")
    assert "via cli" in out
    cli("training-manifest", "-o", str(manifest), "--data-dir", data)
    assert [json.loads(line)["generation_id"] for line in manifest.read_text().splitlines()] == [
        image
    ]
    code, out, _ = cli("consent", "withdraw", "training", "--user-key", key, "--data-dir", data)
    assert code == 0 and out.startswith("training: not granted since")
    code, out, _ = cli("training-manifest", "-o", str(manifest), "--data-dir", data)
    assert code == 0 and out.strip().endswith("0 generations") and manifest.read_text() == ""
    code, out, _ = cli("consent", "status", "--user-key", key, "--data-dir", data)
    assert "training: not granted since" in out


def test_export_erase_and_the_key_is_unknown_afterwards(cli, data, key, tmp_path):
    add_generation(data, key, "SENTINEL-cli-export")
    target = tmp_path / "mine.zip"
    code, out, err = cli("export", "--user-key", key, "-o", str(target), "--data-dir", data)
    assert code == 0, err
    with zipfile.ZipFile(target) as archive:
        assert b"SENTINEL-cli-export" in archive.read("data/generations.json")
    code, out, err = cli("erase", "--yes", "--user-key", key, "--data-dir", data)
    assert code == 0, err
    assert "Erased rows: generations 1" in out and "verified" in out
    code, out, err = cli("user", "show", "--user-key", key, "--data-dir", data)
    assert code == 2 and out == ""
    assert err.strip() == f"Error: {UNKNOWN_KEY}" and "Traceback" not in err


def test_erase_asks_first_and_a_no_keeps_everything(cli, data, key, monkeypatch):
    add_generation(data, key, "keep me")
    code, _, err = cli("erase", "--user-key", key, "--data-dir", data, input="n\n")
    assert code == 1 and "Aborted" in err
    with studio_for(data) as studio:
        assert len(studio.store.list_generations(open_user(studio, key))) == 1


def test_key_from_a_file_or_stdin(cli, data, key, tmp_path, monkeypatch):
    key_file = tmp_path / "key.txt"
    key_file.write_text(key + "\n")
    code, out, _ = cli("restrict", "--user-key-file", str(key_file), "--data-dir", data)
    assert code == 0 and out.strip() == "Processing restricted."
    code, out, _ = cli(
        "restrict", "--lift", "--user-key-file", "-", "--data-dir", data, input=key + "\n"
    )
    assert code == 0 and out.strip() == "Restriction lifted."
    with studio_for(data) as studio:
        kinds = [r["kind"] for r in studio.store.list_privacy_requests()]
    assert kinds == ["restriction-lifted", "restriction"]


def test_object_and_withdraw_the_objection(cli, data, key):
    code, out, _ = cli("object", "--user-key", key, "--data-dir", data)
    assert code == 0 and "no usage events" in out
    with studio_for(data) as studio:
        assert studio.store.get_user(open_user(studio, key))["analytics_objection"]
    code, out, _ = cli("object", "--withdraw", "--user-key", key, "--data-dir", data)
    assert code == 0 and out.strip() == "Objection withdrawn."
    with studio_for(data) as studio:
        assert not studio.store.get_user(open_user(studio, key))["analytics_objection"]


def test_delete_image_and_other_users_images(cli, data, key):
    mine = add_generation(data, key, "mine")
    code, other_key_out, _ = cli("user", "create", "--data-dir", data)
    other_key = other_key_out.strip()
    theirs = add_generation(data, other_key, "theirs")
    code, _, err = cli("delete-image", theirs, "--user-key", key, "--data-dir", data)
    assert code == 2 and err.count("\n") == 1 and "No generation with id" in err
    code, out, _ = cli("delete-image", mine, "--user-key", key, "--data-dir", data)
    assert code == 0 and out.startswith("Deleted 1 image")
    with studio_for(data) as studio:
        assert studio.store.list_generations(open_user(studio, key)) == []
        assert len(studio.store.list_generations(open_user(studio, other_key))) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["user", "show", "--user-key", new_user_key()],  # well-formed, never issued
        ["user", "show", "--user-key", "gpu_tooshort"],
        ["export", "--user-key", "gpx_abcd_" + "x" * 40, "-o", "x.zip"],  # an API key
        ["erase", "--yes", "--user-key", "not-a-key"],
        ["consent", "grant", "training", "--user-key", ""],
        ["restrict", "--user-key", "local"],
    ],
)
def test_keys_that_open_nothing_exit_2_with_the_same_line(
    cli, data, key, args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args, "--data-dir", data)
    assert code == 2 and out == ""
    assert err == f"Error: {UNKNOWN_KEY}\n"
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "show"], "--user-key"),
        (["user", "show", "--user-key", "a", "--user-key-file", "f"], "--user-key"),
        (["consent", "grant", "marketing", "--user-key", "a"], "marketing"),
        (["user", "update", "--display-name", "x" * 81], "display_name"),
        (["export", "--user-key-file", "/no/such/file"], "Could not read"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(cli, data, key, args, message):
    if args[:2] == ["user", "update"]:
        args = [*args, "--user-key", key]
    code, _, err = cli(*args, "--data-dir", data)
    assert code == 2 and message in err and "Traceback" not in err


def test_policy_prints_version_date_and_text(cli):
    code, out, _ = cli("policy")
    assert code == 0
    policy = load_policy()
    updated = policy.last_updated.isoformat()
    assert out.startswith(f"Version {policy.version} · Last updated {updated}\n\n# GemPix")
