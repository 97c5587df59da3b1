"""`gempix`: the command-line front door.

Commands are thin: they build one ``Settings``, call the service, and print. Exit codes are a
contract: 0 ok; 2 bad usage or invalid input (one line, no traceback); 1 internal error.
"""

from __future__ import annotations

import logging
import sys

import click

from ..errors import GemPixError
from ..settings import Settings


class UserError(click.ClickException):
    """A GemPixError shown as one line with exit code 2, like click's own usage errors."""

    exit_code = 2


def load_settings(**overrides) -> Settings:
    try:
        return Settings.load(**overrides)
    except GemPixError as error:
        raise UserError(error.message) from None


_debug = {"on": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gempix")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def cli(debug: bool) -> None:
    """GemPix: an AI image studio with a privacy model you can check.

    Start with: gempix generate "a lighthouse at dawn" -o out/
    """
    _debug["on"] = debug


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into the documented exit codes."""
    from . import (  # noqa: F401
        analytics,
        batch,
        characters,
        generate,
        keys,
        models,
        privacy,
        serve,
        styles,
    )

    cli.add_command(analytics.analytics)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        cli.main(args=argv, prog_name="gempix", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except GemPixError as error:
        click.echo(f"Error: {error.message}", err=True)
        sys.exit(2)
    except Exception as error:  # the one place an unexpected failure becomes exit 1
        if _debug["on"]:
            raise
        click.echo(
            f"Internal error ({type(error).__name__}). Run gempix --debug ... for details.",
            err=True,
        )
        sys.exit(1)
