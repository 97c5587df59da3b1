"""Every generation from the service is recorded, and every attempt leaves an anonymous event."""

from __future__ import annotations

import pytest

from gempix.errors import ValidationError
from gempix.params import GenerationRequest
from gempix.privacy.gate import AgeConfirmationRequired, confirm_age


@pytest.fixture
def studio(studio):
    """The studio with two users who confirmed their age."""
    for user in ("user-a", "user-b"):
        confirm_age(studio.store, user)
    return studio


def events(studio):
    return studio.store.usage_events().to_dict("records")


def test_generation_is_committed_with_all_parameters(studio):
    result = studio.generate(
        GenerationRequest("a sentinel fox", seed=9, num_images=2, styles=("watercolor",)),
        user_id="user-a",
        front_door="notebook",
    )
    rows = studio.store.list_generations("user-a")
    assert {row["id"] for row in rows} == {image.id for image in result.images}
    row = studio.store.get_generation("user-a", result.images[0].id)
    assert row["prompt"].startswith("watercolor painting of a sentinel fox")
    assert row["seed"] == 9 and row["front_door"] == "notebook" and row["status"] == "ok"
    assert row["file_path"] == str(result.images[0].path)
    assert list(row["styles"]) == ["watercolor"]


def test_usage_event_is_anonymous(studio):
    studio.generate(GenerationRequest("a sentinel-prompt-xyz", seed=1), user_id="user-a")
    (event,) = events(studio)
    assert event["status"] == "ok" and event["front_door"] == "cli" and event["model"] == "tiny"
    assert "user-a" not in str(event.values()) and "sentinel" not in str(event.values())
    assert set(event) >= {"hour_bucket", "visitor_hash", "latency_ms"}
    assert "user_id" not in event and "prompt" not in event


def test_failed_request_leaves_an_error_event_and_no_generation(studio):
    with pytest.raises(ValidationError, match="not a multiple of 8"):
        studio.generate(GenerationRequest("x", width=65, height=64), user_id="user-a")
    assert studio.store.list_generations("user-a") == []
    (event,) = events(studio)
    assert event["status"] == "ValidationError" and event["steps"] == 0


def test_unknown_style_names_are_logged_as_custom(studio):
    request = GenerationRequest("x", styles=("my-secret-look", "watercolor"), seed=1)
    with pytest.raises(ValidationError, match="Unknown style"):
        studio.generate(request, user_id="user-a")
    (event,) = events(studio)
    assert list(event["styles"]) == ["custom", "watercolor"]


def test_other_users_generations_are_not_found(studio):
    from gempix.errors import NotFoundError

    image = studio.generate(GenerationRequest("x", seed=1), user_id="user-a").images[0]
    studio.store.ensure_user("user-b")
    with pytest.raises(NotFoundError):
        studio.store.get_generation("user-b", image.id)


def test_first_generation_needs_age_confirmation(studio):
    with pytest.raises(AgeConfirmationRequired, match="at least 13 years old"):
        studio.generate(GenerationRequest("x"), user_id="new-user")
    assert studio.store.list_generations("new-user") == []
    confirm_age(studio.store, "new-user")
    assert studio.generate(GenerationRequest("x"), user_id="new-user").images


def test_local_operator_is_not_gated(studio):
    assert studio.generate(GenerationRequest("x")).images  # LOCAL_USER, the CLI default
