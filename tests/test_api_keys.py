"""API keys: format, hashing with the installation's secret, constant-time checks, revocation,
ownership, and the `gempix keys` commands."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest

from gempix import keys
from gempix.errors import NotFoundError, PermissionDenied, ValidationError
from gempix.privacy.identity import LOCAL_USER, create_user, server_secret
from gempix.service import Studio
from gempix.settings import Settings


@pytest.fixture
def studio(tmp_path):
    studio = Studio(Settings.load({}, data_dir=str(tmp_path / "data"), model="tiny"))
    yield studio
    studio.close()


def test_key_format_and_what_is_stored(studio):
    _, user_id = create_user(studio)
    full, row = studio.keys.create(user_id, "user", "laptop")
    match = re.fullmatch(r"gpx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", full)
    assert match and match.group(1) == row["prefix"]
    secret = match.group(2)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert "secret_hash" not in row and row["user_id"] == user_id and row["name"] == "laptop"
    stored = studio.store.get_api_key(row["prefix"])
    expected = hmac.new(
        server_secret(studio.settings), f"{row['prefix']}:{secret}".encode(), hashlib.sha256
    ).hexdigest()
    assert stored["secret_hash"] == expected
    assert secret not in json.dumps(stored, default=str)
    assert all("secret_hash" not in r for r in studio.keys.list())


def test_verify_accepts_the_key_and_refuses_everything_else_alike(studio, monkeypatch):
    _, user_id = create_user(studio)
    studio.privacy.set_role(user_id, "admin")
    full, row = studio.keys.create(user_id, "admin")
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    info = studio.keys.verify(f"Bearer {full}")
    assert info == keys.KeyInfo(row["prefix"], user_id, "admin") and info.is_admin
    wrong = full[:-1] + ("A" if full[-1] != "A" else "B")
    attempts = [wrong, f"gpx_{'0' * 12}_{'A' * 43}", "gpx_short", "", None, 42]
    messages = set()
    for attempt in attempts:
        with pytest.raises(keys.InvalidKeyError) as refused:
            studio.keys.verify(attempt)
        messages.add(refused.value.message)
        assert refused.value.status == 401
        assert refused.value.prefix == (row["prefix"] if attempt == wrong else None)
    assert len(messages) == 1
    assert len(compared) == 1 + len(attempts)  # constant-time comparison on every path


def test_revoked_key_refuses(studio):
    full, row = studio.keys.create(LOCAL_USER)
    assert studio.keys.verify(full).user_id == LOCAL_USER
    studio.keys.revoke(None, row["prefix"])
    with pytest.raises(keys.InvalidKeyError):
        studio.keys.verify(full)


def test_keys_are_bound_to_the_installation_secret(tmp_path):
    def open_with(secret: str) -> Studio:
        return Studio(Settings.load({}, data_dir=str(tmp_path / "d"), model="tiny", secret=secret))

    with open_with("x" * 40) as studio:
        full, _ = studio.keys.create(LOCAL_USER)
        assert studio.keys.verify(full).user_id == LOCAL_USER
    with open_with("y" * 40) as moved, pytest.raises(keys.InvalidKeyError):
        moved.keys.verify(full)  # same rows, another server secret: useless


def test_users_revoke_only_their_own_keys(studio):
    _, alice = create_user(studio)
    _, bob = create_user(studio)
    _, row = studio.keys.create(alice)
    with pytest.raises(NotFoundError):
        studio.keys.revoke(bob, row["prefix"])
    studio.keys.revoke(alice, f"gpx_{row['prefix']}_whatever")
    assert studio.keys.list(alice)[0]["revoked_at"] is not None
    assert studio.keys.list(bob) == []


def test_roles_and_names_are_checked(studio):
    with pytest.raises(ValidationError):
        studio.keys.create(LOCAL_USER, "root")
    with pytest.raises(NotFoundError):  # keys belong to existing users only
        studio.keys.create("f" * 64)
    _, plain = create_user(studio)
    with pytest.raises(PermissionDenied, match="an admin key needs an admin account"):
        studio.keys.create(plain, "admin")
    user = keys.KeyInfo("a" * 12, "u", "user")
    with pytest.raises(PermissionDenied):
        keys.require_role(user, "admin")
    assert keys.require_role(user, "user") is user


def test_cli_create_list_revoke(cli, tmp_path):
    data = str(tmp_path / "data")
    code, out, err = cli("keys", "create", "--role", "admin", "--name", "ops", "--data-dir", data)
    assert code == 0 and re.fullmatch(r"gpx_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n", out)
    prefix = out.split("_")[1]
    assert prefix in err and "only now" in err
    code, out, _ = cli("keys", "list", "--data-dir", data)
    assert code == 0 and prefix in out and "admin" in out and "ops" in out and "active" in out
    code, out, _ = cli("keys", "list", "--format", "json", "--data-dir", data)
    listed = json.loads(out)
    assert listed[0]["prefix"] == prefix and "secret_hash" not in listed[0]
    code, out, _ = cli("keys", "revoke", prefix, "--data-dir", data)
    assert code == 0 and "Revoked" in out
    code, out, _ = cli("keys", "list", "--data-dir", data)
    assert "revoked" in out
    code, _, err = cli("keys", "revoke", "000000000000", "--data-dir", data)
    assert code == 2 and "No API key" in err


def test_cli_binds_a_key_to_a_user_key(cli, tmp_path):
    data = tmp_path / "data"
    with Studio(Settings.load({}, data_dir=str(data), model="tiny")) as studio:
        user_key, user_id = create_user(studio)
    code, out, _ = cli("keys", "create", "--user-key", user_key, "--data-dir", str(data))
    assert code == 0
    with Studio(Settings.load({}, data_dir=str(data), model="tiny")) as studio:
        assert studio.keys.verify(out.strip()).user_id == user_id
    code, _, err = cli("keys", "create", "--user-key", "gpu_" + "A" * 43, "--data-dir", str(data))
    assert code == 2 and "Unknown user key" in err


def test_admin_is_the_accounts_role_and_a_key_can_only_narrow_it(studio):
    """One source of truth for "admin" at every door: the account's role. An admin key acts
    as admin only while its account is one; a user key of an admin account never does."""
    _, user_id = create_user(studio)
    studio.privacy.set_role(user_id, "admin")
    admin_key, _ = studio.keys.create(user_id, "admin")
    user_key, _ = studio.keys.create(user_id, "user")
    assert studio.keys.verify(admin_key).is_admin and studio.privacy.is_admin(user_id)
    assert not studio.keys.verify(user_key).is_admin
    studio.privacy.set_role(user_id, "user")  # demoted: the admin key no longer is one
    assert not studio.keys.verify(admin_key).is_admin and not studio.privacy.is_admin(user_id)
    assert studio.privacy.is_admin(LOCAL_USER)  # the operator owns the installation
