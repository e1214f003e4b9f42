"""The root Typer app and the one way a command fails: `abort(message, code)`."""
from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="medgym",
    help="Compile clinical specs into Gymnasium environments, evaluate agents and train them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console_err = Console(stderr=True)


def abort(message: str, code: int = 2) -> NoReturn:
    """Print one red line to stderr and exit: 1 = checks failed, 2 = usage or input error."""
    console_err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
