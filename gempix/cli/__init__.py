"""`gempix`: the command-line front door.

Commands are thin: they build one ``Settings``, call the ``Studio``, and print. Exit codes are
a contract: 0 ok; 2 bad usage or invalid input (one line, no traceback); 1 internal error.
Commands acting for a user take their user key with ``--user-key`` or, keeping it out of the
shell history and the process list, ``--user-key-file`` (``-`` reads standard input); without
one, the local operator acts (where a command allows it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from ..errors import GemPixError
from ..privacy.identity import LOCAL_USER
from ..service import Studio
from ..settings import Settings


class UserError(click.ClickException):
    """A GemPixError shown as one line with exit code 2, like click's own usage errors."""

    exit_code = 2


class InternalError(click.ClickException):
    """An unexpected failure: one line naming its class, exit code 1 (``--debug``: traceback)."""

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


class Group(click.Group):
    """Click's group keeping the exit-code contract for every command it runs: a GemPixError
    is a ``UserError``, anything unexpected an ``InternalError`` (raised as is with --debug)."""

    group_class = type  # subgroups are Groups too

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GemPixError as error:
            raise UserError(error.message) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.find_root().params.get("debug"):
                raise
            raise InternalError(
                f"Internal error ({type(error).__name__}). Run gempix --debug ... for details."
            ) from None


def read_key(user_key: str | None, user_key_file: str | None) -> str | None:
    """The user key given with --user-key or --user-key-file (None: neither was given)."""
    if user_key is not None and user_key_file is not None:
        raise UserError("Give the user key with --user-key KEY or --user-key-file FILE, not both.")
    if user_key_file is None:
        return user_key
    try:
        if user_key_file == "-":
            return sys.stdin.readline().strip()
        return Path(user_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise UserError(f"Could not read the user key from {user_key_file}.") from None


def key_options(command):
    """--user-key / --user-key-file, for every command that acts for a user."""
    command = click.option(
        "--user-key-file",
        type=click.Path(dir_okay=False, allow_dash=True),
        help="Read the user key from this file ('-': standard input).",
    )(command)
    return click.option("--user-key", help="Your user key (gpu_...).")(command)


def data_dir_option(command):
    return click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")(
        command
    )


def user_key_options(command):
    """--user-key / --user-key-file / --data-dir."""
    return key_options(data_dir_option(command))


@contextlib.contextmanager
def session(
    settings: Settings, user_key: str | None, user_key_file: str | None, *, operator: bool = False
) -> Iterator[tuple[Studio, str]]:
    """A studio and the user the key opens (the local operator without a key, if
    ``operator``); the studio is closed on leaving."""
    key = read_key(user_key, user_key_file)
    if key is None and not operator:
        raise UserError("Give the user key with --user-key KEY or --user-key-file FILE.")
    with Studio(settings) as studio:
        yield studio, LOCAL_USER if key is None else studio.privacy.open_user(key)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gempix")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def cli(debug: bool) -> None:
    """GemPix: an AI image studio with a privacy model you can check.

    Start with: gempix generate "a lighthouse at dawn" -o out/
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point (``gempix``, ``python -m gempix``): run the CLI with its exit codes."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    cli.main(args=argv, prog_name="gempix")


# Each module registers its commands on ``cli`` (they import it from here).
from . import (  # noqa: E402,F401
    analytics,
    batch,
    characters,
    edit,
    generate,
    keys,
    models,
    privacy,
    serve,
    styles,
    verify,
)
