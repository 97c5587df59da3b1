"""docs/privacy.md cannot drift: its inventory is generated from the registry, and every
per-user table, audit kind, consent purpose and privacy command appears in it."""

from __future__ import annotations

import re
from pathlib import Path

import click

import gempix.cli.privacy  # noqa: F401  (registers the commands)
from gempix.cli import cli
from gempix.privacy import PURPOSES
from gempix.privacy.audit import KINDS
from gempix.privacy.inventory import END, START, inventory_block
from gempix.store import KEPT_TABLES, PER_USER_TABLES

DOC = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"
PRIVACY_COMMANDS = (
    "user",
    "consent",
    "policy",
    "export",
    "erase",
    "delete-image",
    "restrict",
    "object",
    "training-manifest",
)


def test_the_inventory_is_the_generated_one():
    text = DOC.read_text()
    assert START in text and END in text
    found = text[text.index(START) : text.index(END) + len(END)]
    assert found == inventory_block(), (
        "docs/privacy.md's inventory is stale: paste gempix.privacy.inventory.inventory_block()"
    )


def test_every_table_appears_in_the_inventory():
    inventory = inventory_block()
    for table in PER_USER_TABLES:
        assert re.search(rf"\| `{table}` \(per-user\) \|", inventory), table
    for table in KEPT_TABLES:
        assert re.search(rf"\| `{table}` \(kept\) \|", inventory), table


def test_audit_kinds_purposes_and_commands_are_documented():
    text = DOC.read_text()
    for kind, meaning in KINDS.items():
        assert f"| `{kind}` | {meaning} |" in text, kind
    for purpose in PURPOSES:
        assert f"| `{purpose}` |" in text, purpose
    for name in PRIVACY_COMMANDS:
        command = cli.commands[name]
        assert f"gempix {name}" in text, name
        if isinstance(command, click.Group):
            for sub in command.commands:
                assert re.search(rf"gempix {name} [^`]*\b{sub}\b", text), f"{name} {sub}"
