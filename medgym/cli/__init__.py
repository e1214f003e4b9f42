"""The `medgym` command line: a thin root that wires one module per subcommand.

Each subcommand module defines its command(s) and calls one library function that works without
the CLI; heavy imports stay inside command bodies so `medgym --help` stays fast.
"""
from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from medgym.cli._app import app, abort, console_err  # noqa: F401  (re-exported for subcommand modules)
from medgym.cli import compile as _compile  # noqa: F401,E402  (each import registers its commands)
from medgym.cli import inspect as _inspect  # noqa: F401,E402
from medgym.cli import kb as _kb  # noqa: F401,E402
from medgym.cli import run as _run  # noqa: F401,E402
from medgym.cli import evaluate as _evaluate  # noqa: F401,E402
from medgym.cli import train as _train  # noqa: F401,E402
from medgym.cli import plot as _plot  # noqa: F401,E402
from medgym.cli import export as _export  # noqa: F401,E402
from medgym.cli import docs as _docs  # noqa: F401,E402
from medgym.cli import report as _report  # noqa: F401,E402


def main() -> None:
    """Entry point: run the app; unknown exceptions are reported once, without click frames."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # a bug, not a user error: show it briefly, full trace only on request
        if os.environ.get("MEDGYM_DEBUG"):
            raise
        console_err.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}")
        console_err.print("set MEDGYM_DEBUG=1 to see the traceback")
        sys.exit(3)
