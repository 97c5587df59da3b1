"""The web app's translation layer without a server: identity, controls, formatting, flags."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pandas as pd
import pytest

from gempix.errors import NotFoundError, ValidationError
from gempix.privacy.identity import new_user_key, oauth_user_id, server_secret, user_id_for
from gempix.ui import analytics as analytics_tab
from gempix.ui import format as fmt
from gempix.ui.context import Ctx
from gempix.ui.create import request_from_controls
from gempix.ui.identity import NO_KEY, Identity, browser_secret


def test_identity_maps_keys_and_space_sign_ins(studio):
    secret = server_secret(studio.settings)
    key = new_user_key()
    off_space = Identity(studio, on_space=False)
    on_space = Identity(studio, on_space=True)
    profile = SimpleNamespace(username="ada")
    assert off_space.user_id(key) == user_id_for(secret, key)
    # Off a Space a profile is ignored, whatever a request carries.
    assert off_space.user_id(key, profile) == user_id_for(secret, key)
    assert on_space.user_id(key, profile) == oauth_user_id(secret, "ada")
    assert on_space.user_id(key, None) == user_id_for(secret, key)
    with pytest.raises(ValidationError, match=NO_KEY):
        off_space.user_id(None)
    with pytest.raises(NotFoundError, match="Unknown user key"):
        off_space.user_id("gpu_not-a-real-key")
    assert off_space.key_or_new(key) == key
    fresh = off_space.key_or_new("tampered")
    assert fresh != "tampered" and off_space.user_id(fresh)


def test_browser_secret_is_stable_and_not_the_server_secret(settings):
    first = browser_secret(settings)
    assert first == browser_secret(settings) and len(first) == 64
    assert first != server_secret(settings).decode()


def test_admin_is_the_accounts_role(studio):
    user_id = user_id_for(server_secret(studio.settings), new_user_key())
    assert not studio.privacy.is_admin(user_id)  # unknown user
    studio.store.ensure_user(user_id)
    assert not studio.privacy.is_admin(user_id)
    studio.privacy.set_role(user_id, "admin")
    assert studio.privacy.is_admin(user_id)
    studio.store.update_user(user_id, locked=True)  # being erased: no longer anything
    assert not studio.privacy.is_admin(user_id)


def test_policy_notice_after_a_policy_change(studio, tmp_path):
    from gempix.privacy.gate import confirm_age
    from gempix.privacy.policy import acknowledge_policy
    from gempix.ui.privacy import user_flags

    ctx = Ctx(studio=studio, identity=Identity(studio), cache_dir=tmp_path)
    user_id = user_id_for(server_secret(studio.settings), new_user_key())
    assert user_flags(ctx, user_id) == {"exists": False, "confirmed": False, "notice": False}
    confirm_age(studio.store, user_id)
    acknowledge_policy(studio, user_id)
    assert user_flags(ctx, user_id)["notice"] is False
    studio.store.update_user(user_id, policy_version_seen="0.1")  # they saw an older one
    assert user_flags(ctx, user_id) == {"exists": True, "confirmed": True, "notice": True}


def test_controls_become_a_request():
    request = request_from_controls(
        {
            "prompt": "a fox",
            "styles": "watercolor",
            "seed": 12.0,
            "random_seed": False,
            "steps": 3.0,
            "guidance": 1,
            "num_images": 2.0,
            "aspect": "16:9",
            "resolution": "4k",
            "upscaler": "lanczos",
            "init_image": "",
        }
    )
    assert (request.seed, request.steps, request.num_images) == (12, 3, 2)
    assert request.styles == ("watercolor",) and request.init_image is None
    assert (request.aspect, request.resolution, request.upscaler) == ("16:9", "4k", "lanczos")
    assert request_from_controls({"prompt": "x", "seed": 12, "random_seed": True}).seed is None
    with pytest.raises(ValidationError, match="seed: enter a seed"):
        request_from_controls({"prompt": "x", "seed": None, "random_seed": False})
    with pytest.raises(ValidationError, match="steps: expected a whole number"):
        request_from_controls({"prompt": "x", "random_seed": True, "steps": 2.5})


def test_details_and_captions_show_parameters_and_score():
    row = {
        "id": "abc",
        "width": 64,
        "height": 64,
        "seed": 7,
        "consistency": None,  # the store's column; the score may be in the params
        "params": {"prompt": "a | b\nc", "styles": ["anime"], "consistency": 0.8123},
    }
    assert fmt.caption(row) == "64×64 · seed 7 · consistency 0.81"
    details = fmt.details(row)
    assert "consistency **0.812**" in details
    assert "| prompt | a \\| b c |" in details  # a pipe or newline cannot break the table


def test_details_name_the_character_and_style_reference():
    character = {"id": "c1", "name": "Mira", "strength": 0.7, "references": 2}
    one_off = {**character, "id": None, "name": None, "references": 1}
    style = {"strength": 0.8}
    details = fmt.details({"params": {"character": character, "style_reference": style}})
    assert "| character | Mira · 2 references · strength 0.7 |" in details
    assert "| style reference | strength 0.8 |" in details
    details = fmt.details({"params": {"character": one_off, "style_reference": None}})
    assert "| character | one-off references · 1 reference · strength 0.7 |" in details
    assert "style reference" not in details


def test_erasure_report_shows_counts_only():
    report = SimpleNamespace(
        rows={"generations": 3, "users": 1},
        files=5,
        bytes=2_000_000,
        cached_copies=2,
        usage_events=1,
        verified=True,
        seconds=0.42,
    )
    text = fmt.erasure_report(report)
    assert "**Records deleted:** 4 (generations 3, users 1)" in text
    assert "**Files deleted:** 5 (2 cached copies, 2.0 MB)" in text
    assert "**Verified:** yes" in text


def test_hidden_analytics_cells_stay_on_the_axis_without_a_value():
    table = pd.DataFrame(
        {
            "resolution_class": ["native", "4k", "(all)"],
            "events": pd.array([12, None, None], dtype="Int64"),
            "visitors": pd.array([12, None, None], dtype="Int64"),
            "share": [1.0, None, None],
            "suppressed": [False, True, True],
        }
    )
    plot = analytics_tab.mix_plot(table, "resolution_class")
    assert plot.to_dict("list") == {
        "resolution_class": ["native", "4k (hidden)"],
        "events": [12, 0],
        "cell": [analytics_tab.SHOWN, analytics_tab.HIDDEN],
    }
    assert analytics_tab.caption(table) == "2 of 3 cells hidden (fewer than k people)."
    shown = analytics_tab.shown_table(table)
    assert shown["events"].tolist() == ["12", "hidden", "hidden"]


def test_cancel_flags_are_per_session(tmp_path):
    ctx = Ctx(studio=None, identity=None, cache_dir=tmp_path)
    first, second = ctx.cancel_flag("a"), ctx.cancel_flag("b")
    assert ctx.cancel("a") and first.is_set() and not second.is_set()
    ctx.done("a", first)
    assert not ctx.cancel("a")  # nothing running any more
    assert isinstance(second, threading.Event) and not ctx.cancel(None)


def test_space_build_shows_the_login_button(shared_studio, monkeypatch):
    import gradio.oauth

    from gempix.ui.app import build_app

    # Off a real Space Gradio mocks the sign-in with the machine's HF account; fake that one.
    monkeypatch.setattr(
        gradio.oauth,
        "_get_mocked_oauth_info",
        lambda: {"userinfo": {"preferred_username": "ada"}, "expires_at": 2**31},
    )

    def buttons(app) -> set:
        config = app.get_config_file()
        return {c["props"].get("value") for c in config["components"] if c["type"] == "button"}

    assert "Sign in with Hugging Face" in buttons(build_app(shared_studio, on_space=True))
    assert "Sign in with Hugging Face" not in buttons(build_app(shared_studio))


def test_the_server_knows_a_space_by_space_id(monkeypatch):
    from gempix.ui.app import running_on_space

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not running_on_space()
    monkeypatch.setenv("SPACE_ID", "gempix/studio")
    assert running_on_space()


def test_gpu_events_let_max_batch_requests_into_the_studio(shared_studio):
    from gempix.ui.app import build_app

    gpu = [fn for fn in build_app(shared_studio).fns.values() if fn.concurrency_id == "gpu"]
    assert {fn.api_name for fn in gpu} >= {"generate", "upscale"}
    assert {fn.concurrency_limit for fn in gpu} == {shared_studio.settings.max_batch}


def test_a_sent_image_is_recognised_by_its_pixels_after_the_editor_re_encodes_it(tmp_path):
    """Send to Edit: the editor uploads the picture again under another name, with other
    bytes; the same pixels keep the source id, one changed pixel does not."""
    from PIL import Image

    from gempix.ui.edit import same_pixels

    picture = Image.effect_noise((32, 24), 60).convert("RGB")
    picture.save(tmp_path / "stored.png", optimize=True)
    picture.convert("RGBA").save(tmp_path / "background.png", compress_level=0)
    assert (tmp_path / "stored.png").read_bytes() != (tmp_path / "background.png").read_bytes()
    assert same_pixels(str(tmp_path / "background.png"), str(tmp_path / "stored.png"))
    picture.putpixel((5, 5), (255, 0, 0) if picture.getpixel((5, 5)) != (255, 0, 0) else (0, 0, 0))
    picture.save(tmp_path / "changed.png")
    assert not same_pixels(str(tmp_path / "changed.png"), str(tmp_path / "stored.png"))
    picture.resize((24, 32)).save(tmp_path / "other-size.png")
    assert not same_pixels(str(tmp_path / "other-size.png"), str(tmp_path / "stored.png"))
    (tmp_path / "not-a-picture.png").write_bytes(b"GIF89a but not really")
    assert not same_pixels(str(tmp_path / "not-a-picture.png"), str(tmp_path / "stored.png"))
