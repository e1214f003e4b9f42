"""`medgym kb ...`: build, search and inspect the knowledge base (filled in by the knowledge-base work)."""
from __future__ import annotations

import typer

from medgym.cli._app import app

kb_app = typer.Typer(help="Build, search and inspect the BM25 knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
