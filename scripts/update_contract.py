"""Write the API contract snapshots: the OpenAPI document of ``/api/v1`` and the web app's
named Gradio endpoints (what ``gradio_client.Client.view_api()`` shows), into
``tests/contract/``, with the version they belong to.

``tests/test_contract.py`` fails when the app's contract differs from the snapshots, and when
a contract was recorded under a version that already had another one. So a change to the
contract goes: bump ``gempix.__version__``, add its ``## <version>`` entry to CHANGELOG.md,
then run

    python scripts/update_contract.py

A breaking change (a field or route removed or renamed, a rule tightened) gets ``/api/v2``
instead of a silent change to ``/api/v1`` (docs/api.md, "Stability"). The script builds the
apps on a throwaway data dir with the offline ``tiny`` model; nothing is generated or loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "tests" / "contract"
OPENAPI = CONTRACT / "openapi-v1.json"
GRADIO = CONTRACT / "gradio-api.json"
VERSIONS = CONTRACT / "versions.json"  # version -> SHA-256 of its contract, one each
CHANGELOG = ROOT / "CHANGELOG.md"
COMMAND = "python scripts/update_contract.py"


def current() -> dict[str, Any]:
    """The contract of this checkout: ``{"openapi": ..., "gradio": ...}``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    from gempix import __version__
    from gempix.api import create_app
    from gempix.service import Studio
    from gempix.settings import Settings
    from gempix.ui.app import build_app

    with tempfile.TemporaryDirectory() as folder:
        studio = Studio(Settings.load({}, data_dir=folder, model="tiny"))
        try:
            openapi = create_app(studio).openapi()
            named = build_app(studio).get_api_info()["named_endpoints"]
        finally:
            studio.close()
    return {
        "openapi": json.loads(json.dumps(openapi)),
        "gradio": {"version": __version__, "named_endpoints": _without_counters(named)},
    }


def _without_counters(named: dict[str, Any]) -> dict[str, Any]:
    """The named endpoints as JSON, an unlabelled component's label (``parameter_260``,
    ``value_1``: a process-wide counter, so it depends on what was built before) made plain."""
    text = re.sub(r'"(parameter|value)_\d+"', r'"\1"', json.dumps(named))
    return json.loads(text)


def digest(contract: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(contract, sort_keys=True).encode()).hexdigest()


def recorded() -> dict[str, Any]:
    """The committed snapshots (empty parts when missing)."""

    def read(path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    return {"openapi": read(OPENAPI), "gradio": read(GRADIO), "versions": read(VERSIONS) or {}}


def changelog_has(version: str) -> bool:
    text = CHANGELOG.read_text(encoding="utf-8") if CHANGELOG.exists() else ""
    return any(line.startswith(f"## {version}") for line in text.splitlines())


def problems(contract: dict[str, Any], snapshots: dict[str, Any]) -> list[str]:
    """Why ``contract`` may not be recorded as its version (empty: it may)."""
    version = contract["gradio"]["version"]
    found = []
    known = snapshots["versions"].get(version)
    if known is not None and known != digest({k: contract[k] for k in ("openapi", "gradio")}):
        found.append(
            f"version {version} already has another contract: bump gempix.__version__ "
            "(gempix/__init__.py)"
        )
    if not changelog_has(version):
        found.append(f"CHANGELOG.md has no '## {version}' entry")
    return found


def main() -> int:
    contract = current()
    snapshots = recorded()
    refused = problems(contract, snapshots)
    if refused:
        print("Not updated: " + "; ".join(refused) + ".", file=sys.stderr)
        return 1
    CONTRACT.mkdir(parents=True, exist_ok=True)
    for path, part in ((OPENAPI, contract["openapi"]), (GRADIO, contract["gradio"])):
        path.write_text(json.dumps(part, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    versions = {**snapshots["versions"], contract["gradio"]["version"]: digest(contract)}
    VERSIONS.write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"Contract {contract['gradio']['version']} written to {CONTRACT.relative_to(ROOT)}/.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
