"""Identity: random user keys, only their HMAC stored, one error for every key that opens
nothing, and a server secret that is private, stable and overridable."""

from __future__ import annotations

import re
import stat
import threading

import pytest

from gempix.errors import NotFoundError, SettingsError
from gempix.privacy import UNKNOWN_KEY, create_user, erase, open_user
from gempix.privacy.identity import (
    SECRET_FILE,
    new_user_key,
    oauth_user_id,
    server_secret,
    user_id_for,
)
from gempix.service import Studio
from gempix.settings import Settings
from gempix.store import Store


@pytest.fixture
def settings(tmp_path):
    return Settings.load({}, data_dir=str(tmp_path / "data"))


def test_a_new_user_gets_a_random_key_and_the_server_keeps_only_its_hmac(settings):
    with Studio(settings, store=Store.open(settings)) as studio:
        key, user_id = create_user(studio)
        other_key, other_id = create_user(studio)
        assert re.fullmatch(r"gpu_[A-Za-z0-9_-]{43}", key) and key != other_key
        assert re.fullmatch(r"[0-9a-f]{64}", user_id) and user_id != other_id
        assert open_user(studio, key) == user_id
        assert open_user(studio, f"  {key}\n") == user_id  # pasted with whitespace
        assert studio.store.get_user(user_id)["age_confirmed_at"] is None
    stored = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert user_id.encode() in stored  # control: stored values are visible as bytes
    assert key.encode() not in stored and key[4:].encode() not in stored


def test_every_key_that_opens_nothing_gets_the_identical_error(settings):
    with Studio(settings) as studio:
        key, user_id = create_user(studio)
        erased_key, erased_id = create_user(studio)
        erase(studio, erased_id)
        locked_key, locked_id = create_user(studio)
        studio.store.update_user(locked_id, locked=True)
        wrong = [
            new_user_key(),  # well-formed, never issued
            erased_key,  # erased: an unknown user afterwards
            locked_key,  # being erased right now
            key[:-1],
            key + "x",
            key.upper(),
            "gpu_",
            "",
            "   ",
            None,
            12345,
            b"gpu_bytes",
            ["gpu_list"],
            "gpx_abcd1234_" + "s" * 40,  # an API key
            user_id,  # the stored id itself is not a key
            "local",
            "gpu_" + "a" * 42 + "!",
            "gpu_" + "\u00e9" * 43,
        ]
        errors = []
        for candidate in wrong:
            with pytest.raises(NotFoundError) as caught:
                open_user(studio, candidate)
            errors.append((type(caught.value), caught.value.message, caught.value.status))
        assert set(errors) == {(NotFoundError, UNKNOWN_KEY, 404)}
        assert open_user(studio, key) == user_id


def test_the_secret_file_is_private_and_stable_across_restarts(settings):
    with Studio(settings) as studio:
        key, user_id = create_user(studio)
    path = settings.data_dir / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    with Studio(settings) as studio:
        assert open_user(studio, key) == user_id
    assert path.read_bytes() == first and len(first) == 64
    assert [p.name for p in settings.data_dir.iterdir() if p.name.startswith(".")] == []


def test_a_secret_file_readable_by_others_is_tightened(settings, caplog):
    secret = server_secret(settings)
    path = settings.data_dir / SECRET_FILE
    path.chmod(0o644)
    assert server_secret(settings) == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_processes_starting_at_once_agree_on_one_secret(settings):
    found: list[bytes] = []
    barrier = threading.Barrier(8)

    def read():
        barrier.wait(timeout=30)
        found.append(server_secret(settings))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 8 and len(set(found)) == 1


def test_gempix_secret_overrides_the_file(settings, tmp_path):
    configured = Settings.load({"GEMPIX_SECRET": "s" * 32}, data_dir=str(tmp_path / "other"))
    with Studio(configured) as studio:
        key, user_id = create_user(studio)
        assert open_user(studio, key) == user_id
    assert not (configured.data_dir / SECRET_FILE).exists()
    assert user_id == user_id_for(b"s" * 32, key) != user_id_for(server_secret(settings), key)
    assert oauth_user_id(b"s" * 32, "ada") != oauth_user_id(server_secret(settings), "ada")
    with pytest.raises(SettingsError, match="GEMPIX_SECRET"):
        server_secret(Settings.load({"GEMPIX_SECRET": "short"}, data_dir=str(tmp_path / "x")))


def test_a_damaged_secret_file_fails_loudly(settings):
    path = settings.data_dir / SECRET_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"abc")
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="damaged"):
        server_secret(settings)
