"""The ``qwenchat`` command line (typer): thin shells over the core.

Modules here import only typer at start-up; each command imports what it needs,
so ``qwenchat --help`` starts fast.
"""

from qwenchat.cli.app import app, main

__all__ = ["app", "main"]
