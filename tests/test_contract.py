"""The frozen API contract: the OpenAPI document and the web app's named Gradio endpoints
equal the snapshots in tests/contract/, and a contract is recorded under a version of its own
with a CHANGELOG.md entry (scripts/update_contract.py writes them)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

from gempix import __version__

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "update_contract.py"
spec = importlib.util.spec_from_file_location("update_contract", SCRIPT)
contract = importlib.util.module_from_spec(spec)
spec.loader.exec_module(contract)

HOW = (
    "The API contract changed. If that is intended: bump gempix.__version__ "
    "(gempix/__init__.py), add a '## <version>' entry to CHANGELOG.md saying what changed, "
    f"then run `{contract.COMMAND}` and commit tests/contract/. A breaking change (removed or "
    "renamed field or route, a tightened rule) goes to /api/v2 instead (docs/api.md, "
    "'Stability')."
)


@pytest.fixture(scope="module")
def now():
    return contract.current()


def _changed(old, new, path="") -> list[str]:
    """Where two JSON documents differ (the first few places), for the failure message."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            place
            for key in sorted(set(old) | set(new), key=str)
            for place in _changed(old.get(key), new.get(key), f"{path}/{key}")
        ]
    return [] if old == new else [path or "/"]


def test_the_app_matches_the_snapshots(now):
    snapshots = contract.recorded()
    for part in ("openapi", "gradio"):
        places = _changed(snapshots[part], now[part]) or ["a number's type (8 vs 8.0)"]
        same = contract.digest(snapshots[part]) == contract.digest(now[part])
        assert same, f"{HOW}\n{part} differs at: {', '.join(places[:8])}"


def test_the_recorded_contract_has_its_version_and_changelog_entry():
    snapshots = contract.recorded()
    recorded = {part: snapshots[part] for part in ("openapi", "gradio")}
    assert snapshots["gradio"]["version"] == __version__, HOW
    assert snapshots["versions"].get(__version__) == contract.digest(recorded), HOW
    assert contract.changelog_has(__version__), HOW


def test_a_changed_contract_needs_a_new_version(now):
    """The script's refusal can happen: the same version with another contract is refused."""
    changed = copy.deepcopy(now)
    changed["openapi"]["paths"]["/api/v1/new"] = {"get": {"operationId": "new"}}
    found = contract.problems(changed, contract.recorded())
    assert found and "bump gempix.__version__" in found[0]
    assert contract.problems(now, contract.recorded()) == []
