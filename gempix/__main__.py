"""`python -m gempix` runs the CLI."""

from .cli import main

main()
