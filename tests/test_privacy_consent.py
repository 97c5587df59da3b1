"""Consent as a truth table, restriction, objection, the age gate, and the policy notice.

The training manifest is the one place generations leave GemPix for training, so the truth
table drives it: each sequence of grant / withdraw / restrict / lift / object ends with the
user's generations in the manifest or not, next to a control user who is always in it.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from gempix import analytics
from gempix.errors import NotFoundError, ValidationError
from gempix.privacy import (
    LOCAL_USER,
    METHODS,
    AgeConfirmationRequired,
    Policy,
    acknowledge_policy,
    admit,
    confirm_age,
    consent_history,
    consent_status,
    create_user,
    grant_consent,
    lift_restriction,
    load_policy,
    needs_notice,
    object_to_analytics,
    restrict,
    training_manifest,
    withdraw_consent,
    withdraw_objection,
)
from gempix.privacy import policy as policy_module
from gempix.privacy.audit import KINDS
from gempix.privacy.policy import parse_policy
from gempix.service import Studio
from gempix.settings import Settings


@pytest.fixture
def studio(tmp_path):
    with Studio(Settings.load({}, data_dir=str(tmp_path / "data"))) as studio:
        yield studio


def user_with_images(studio: Studio, count: int = 2) -> tuple[str, set[str]]:
    _, user_id = create_user(studio)
    ids = {
        studio.store.record_generation(
            {"user_id": user_id, "prompt": f"p{n}", "file_path": f"/x/{n}.png"}
        )
        for n in range(count)
    }
    studio.store.record_generation({"user_id": user_id, "status": "ValidationError"})
    return user_id, ids


def manifest_ids(studio: Studio, tmp_path, name: str = "train.jsonl") -> set[str]:
    result = training_manifest(studio, tmp_path / name)
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert len(lines) == result.generations
    for line in lines:
        assert "user_id" not in line and line["consent"]["policy_version"]
    return {line["generation_id"] for line in lines}


ACTIONS = {
    "grant": lambda s, u: grant_consent(s, u, "training", method="ui"),
    "withdraw": lambda s, u: withdraw_consent(s, u, "training", method="api"),
    "restrict": lambda s, u: restrict(s, u),
    "lift": lambda s, u: lift_restriction(s, u),
    "object": lambda s, u: object_to_analytics(s, u, method="cli"),
    "unobject": lambda s, u: withdraw_objection(s, u, method="notebook"),
}

TRUTH_TABLE = [
    ((), False),  # never asked: training is off by default
    (("grant",), True),
    (("withdraw",), False),
    (("grant", "withdraw"), False),
    (("grant", "withdraw", "grant"), True),
    (("grant", "grant", "withdraw"), False),
    (("grant", "restrict"), False),
    (("restrict", "grant"), False),
    (("grant", "restrict", "lift"), True),
    (("grant", "restrict", "withdraw", "lift"), False),
    (("grant", "object"), True),  # objecting to analytics says nothing about training
    (("object", "unobject"), False),
]


@pytest.mark.parametrize(("actions", "listed"), TRUTH_TABLE)
def test_training_manifest_truth_table(studio, tmp_path, actions, listed):
    subject, subject_ids = user_with_images(studio)
    control, control_ids = user_with_images(studio)
    grant_consent(studio, control, "training")
    for action in actions:
        ACTIONS[action](studio, subject)
    expected = control_ids | (subject_ids if listed else set())
    assert manifest_ids(studio, tmp_path) == expected
    # Every consent change is one ledger row and one audit row.
    changes = [a for a in actions if a not in ("restrict", "lift")]
    assert len(consent_history(studio, subject)) == len(changes)
    choices = [a for a in actions if a in ("grant", "withdraw")]
    granted = bool(choices) and choices[-1] == "grant"
    assert consent_status(studio, subject)["training"].granted is granted


def test_a_withdrawn_user_vanishes_from_the_next_manifest(studio, tmp_path):
    user_id, ids = user_with_images(studio)
    grant_consent(studio, user_id, "training")
    assert manifest_ids(studio, tmp_path, "before.jsonl") == ids
    withdraw_consent(studio, user_id, "training")
    assert manifest_ids(studio, tmp_path, "after.jsonl") == set()
    assert len((tmp_path / "before.jsonl").read_text().splitlines()) == 2  # old file untouched


def test_every_consent_change_is_a_ledger_row_with_version_and_method(studio):
    user_id, _ = user_with_images(studio)
    for method in METHODS:
        grant_consent(studio, user_id, "training", method=method)
        withdraw_consent(studio, user_id, "training", method=method)
    ledger = consent_history(studio, user_id)
    assert [(r["granted"], r["method"]) for r in ledger] == [
        (granted, method) for method in METHODS for granted in (True, False)
    ]
    assert {r["policy_version"] for r in ledger} == {load_policy().version}
    audit = studio.store.list_privacy_requests(limit=100)
    assert sorted(r["kind"] for r in audit) == sorted(
        ["consent-training-granted", "consent-training-withdrawn"] * len(METHODS)
    )
    assert all(r["completed_at"] and user_id not in str(r) for r in audit)


def test_defaults_training_off_analytics_on(studio):
    _, user_id = create_user(studio)
    status = consent_status(studio, user_id)
    assert status["training"].granted is False and status["training"].default
    assert status["analytics"].granted is True and status["analytics"].default
    assert consent_history(studio, user_id) == []


def event():
    return analytics.make_event(
        visitor_hash="0123456789abcdef", front_door="ui", model="tiny", steps=1, latency_ms=5
    )


def test_objection_and_restriction_stop_usage_events_and_are_audited(studio):
    store = studio.store
    _, user_id = create_user(studio)
    assert store.record_event(event(), user_id=user_id)
    object_to_analytics(studio, user_id, method="ui")
    assert not store.record_event(event(), user_id=user_id)
    assert consent_status(studio, user_id)["analytics"].granted is False
    withdraw_objection(studio, user_id, method="ui")
    assert store.record_event(event(), user_id=user_id)
    restrict(studio, user_id)
    assert not store.record_event(event(), user_id=user_id)
    lift_restriction(studio, user_id)
    assert store.record_event(event(), user_id=user_id)
    kinds = [r["kind"] for r in reversed(store.list_privacy_requests())]
    assert kinds == ["objection", "objection-withdrawn", "restriction", "restriction-lifted"]
    assert set(kinds) <= set(KINDS)


@pytest.mark.parametrize(
    ("purpose", "method"),
    [("marketing", "ui"), ("Training", "ui"), ("", "ui"), (None, "ui"), ("training", "email")],
)
def test_unknown_purposes_and_methods_are_refused_and_nothing_is_written(studio, purpose, method):
    _, user_id = create_user(studio)
    for change in (grant_consent, withdraw_consent):
        with pytest.raises(ValidationError, match="purpose|method"):
            change(studio, user_id, purpose, method=method)
    assert consent_history(studio, user_id) == []
    assert studio.store.list_privacy_requests() == []


def test_consent_for_unknown_or_erased_users_is_refused(studio):
    for change in (grant_consent, withdraw_consent, object_to_analytics, restrict):
        with pytest.raises(NotFoundError):
            change(
                studio,
                "f" * 64,
                *(("training",) if change in (grant_consent, withdraw_consent) else ()),
            )
    assert studio.store.list_privacy_requests() == []


def test_age_gate_refuses_until_confirmed_and_never_creates_users(studio):
    store, settings = studio.store, studio.settings
    stranger = "e" * 64
    with pytest.raises(AgeConfirmationRequired, match=f"at least {settings.min_age}") as refused:
        admit(store, settings, stranger)
    assert refused.value.status == 403
    with pytest.raises(NotFoundError):
        store.get_user(stranger)  # an unknown (or erased) id is not brought back
    _, user_id = create_user(studio)
    with pytest.raises(AgeConfirmationRequired):
        admit(store, settings, user_id)
    confirmed = confirm_age(store, user_id)["age_confirmed_at"]
    assert admit(store, settings, user_id)["age_confirmed_at"] == confirmed
    assert confirm_age(store, user_id)["age_confirmed_at"] == confirmed  # kept once
    assert admit(store, settings, LOCAL_USER)["user_id"] == LOCAL_USER  # the operator


def test_policy_is_packaged_with_version_and_date_and_says_what_gempix_does():
    policy = load_policy()
    assert policy.version == "1.1" and policy.last_updated == date(2026, 12, 3)
    assert not policy.text.startswith("---")
    text = " ".join(policy.text.replace("**", "").split())
    for promise in (
        "HMAC-SHA256",
        "Training consent is off by default",
        "30 days",
        "never sell",
        "rewritten",
        "Restriction",
        "Objection",
        "13",
        "gempix export",
        "gempix erase",
    ):
        assert promise in text, promise


def test_policy_front_matter_errors_are_clear():
    assert parse_policy("---\nversion: 2.1\nlast_updated: 2027-01-02\n---\n# P\n").version == "2.1"
    for bad in (
        "# no front matter",
        "---\nversion: x\nlast_updated: 2027-01-02\n---\n",
        ("---\nversion: 2\nlast_updated: soon\n---\n"),
    ):
        with pytest.raises(Exception, match="privacy policy"):
            parse_policy(bad)


def test_policy_notice_until_acknowledged_and_again_after_a_change(studio, monkeypatch):
    _, user_id = create_user(studio)
    assert needs_notice(studio, user_id)
    acknowledge_policy(studio, user_id, load_policy().version)
    assert not needs_notice(studio, user_id)
    assert not needs_notice(studio, LOCAL_USER)
    changed = Policy(version="2.0", last_updated=date(2027, 1, 1), text="new\n")
    monkeypatch.setattr(policy_module, "load_policy", lambda: changed)
    assert needs_notice(studio, user_id)
    with pytest.raises(ValidationError, match="not the current one"):
        acknowledge_policy(studio, user_id, "1.0")  # a stale page cannot acknowledge 2.0
    assert needs_notice(studio, user_id)
    acknowledge_policy(studio, user_id)
    assert studio.store.get_user(user_id)["policy_version_seen"] == "2.0"
    assert not needs_notice(studio, user_id)
    assert isinstance(studio.store.get_user(user_id)["created_at"], datetime)
