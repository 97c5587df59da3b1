"""The OpenAPI schema: property-based requests from it never get a 5xx (schemathesis, positive
and negative examples, against a real server), and every route is in docs/api.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable

from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import create_user
from gempix.server import start_server
from gempix.service import Studio
from gempix.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"
EXAMPLES = {"positive": 6, "negative": 6}
GENERATE_EXAMPLES = 3  # each valid one is a real (tiny) generation
LAST = ("DELETE", f"{API_PREFIX}/me")  # erases the caller: fuzzed after everything else


def operations(schema: dict) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, tiny_folder, tiny_models):
    root = tmp_path_factory.mktemp("schema")
    shutil.copytree(tiny_folder, root / "data" / "models" / "tiny")
    settings = Settings.load({}, data_dir=str(root / "data"), model="tiny")
    studio = Studio(settings, models=tiny_models)
    _, user_id = create_user(studio)
    confirm_age(studio.store, user_id)
    key = studio.keys.create(user_id)[0]
    config = ApiConfig(
        rate_requests="100000/hour",
        rate_generate="10000/minute",
        rate_anonymous="100000/minute",
        max_images=2,
    )
    server = start_server(create_app(studio, config))
    try:
        assert httpx.get(f"{server.url}{API_PREFIX}/health", timeout=10).status_code == 200
        yield server.url, {"Authorization": f"Bearer {key}"}
    finally:
        server.stop()
        studio.close()


def test_no_request_from_the_schema_gets_a_server_error(fuzzed):
    url, auth = fuzzed
    schema = schemathesis.openapi.from_url(f"{url}{API_PREFIX}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    found.sort(key=lambda op: (op.method.upper(), op.path) == LAST)
    assert {(op.method.upper(), op.path) for op in found} >= {LAST, ("POST", "/api/v1/generate")}
    failures: list[str] = []
    calls: list[str] = []
    for operation in found:
        for mode, examples in EXAMPLES.items():
            if operation.path.endswith("/generate") and operation.method.upper() == "POST":
                examples = GENERATE_EXAMPLES

            @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
            @hypothesis_settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def probe(case):
                calls.append(case.method)
                response = case.call(base_url=url, headers=auth, timeout=120)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path}: {response.status_code} "
                        f"{response.text[:200]}"
                    )

            try:
                probe()
            except Unsatisfiable:  # no negative example exists (e.g. a route without inputs)
                assert mode == "negative"
    assert failures == []
    assert len(calls) >= len(found) * EXAMPLES["positive"] // 2  # it really probed


def test_every_route_is_documented(tmp_path):
    studio = Studio(Settings.load({}, data_dir=str(tmp_path / "data"), model="tiny"))
    schema = create_app(studio).openapi()
    text = DOCS.read_text(encoding="utf-8")
    missing = [f"{m} {p}" for m, p in operations(schema) if f"{m} {p}" not in text]
    assert missing == []
    studio.close()
