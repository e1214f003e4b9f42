"""`medgym kb build | search | stats`: build, query and inspect the BM25 knowledge base.

Human output (progress, tables) goes to stderr; `--json` puts the result on stdout.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, console_err

kb_app = typer.Typer(help="Build, search and inspect the BM25 knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

DIR_HELP = "knowledge-base folder (default: $MEDGYM_CACHE_DIR/kb, else ~/.cache/medgym/kb)"


def _open(kb_dir: Optional[Path]):
    from medgym.runtime.kb import KBError, KnowledgeBase

    try:
        return KnowledgeBase.open(kb_dir)
    except KBError as exc:
        abort(str(exc))


def _rebuild_command(sources: list[str], engine: str, only: list[str], license: str, kb_dir: Optional[Path]) -> str:
    from medgym.runtime.kb.engine import DEFAULT_ENGINE
    from medgym.runtime.kb.store import build_command

    extra = [shlex.quote(s) for s in sources]
    if engine != DEFAULT_ENGINE:
        extra.append(f"--engine {engine}")
    extra += [f"--only {shlex.quote(name)}" for name in only]
    if license:
        extra.append(f"--license {shlex.quote(license)}")
    return build_command(kb_dir, " ".join(extra))


class _Bars:
    """One progress bar per source, created when the source starts (its size may be unknown)."""

    def __init__(self, progress):
        self.progress, self.tasks = progress, {}

    def __call__(self, source: str, done: int, estimate: Optional[int]) -> None:
        if source not in self.tasks:
            self.tasks[source] = self.progress.add_task(source, total=estimate)
        task = self.tasks[source]
        if estimate is not None and done > estimate:
            self.progress.update(task, total=done)
        self.progress.update(task, completed=done)


@kb_app.command("build")
def build_command(
    sources: Optional[list[str]] = typer.Argument(
        None, help="corpus files or folders, each PATH or NAME=PATH: .jsonl[.gz] ({id,title,text} or MedRAG), "
                   "PubMed .xml[.gz], .md/.txt, .obo; none = the starter corpus from installed packages"),
    engine: str = typer.Option("tantivy", "--engine", help="tantivy (fast, default) or whoosh (pure Python)"),
    kb_dir: Optional[Path] = typer.Option(None, "--dir", help=DIR_HELP),
    only: Optional[list[str]] = typer.Option(None, "--only", help="starter sources to include (repeatable): "
                                             "icd10cm, guidelines, differentials, drugs, hpo, medgym"),
    license: str = typer.Option("", "--license", help="licence recorded with user corpora"),
    as_json: bool = typer.Option(False, "--json", help="print the new knowledge base's stats as JSON on stdout"),
) -> None:
    """Build the knowledge base atomically: the previous one stays usable until the new one is complete."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medgym.runtime.kb import ENGINES, KBError, build_kb, sources_for

    sources, only = sources or [], only or []
    if engine not in ENGINES:
        abort(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if sources and only:
        abort("--only picks starter sources; it cannot be combined with SOURCE paths")
    try:
        chosen, notes = sources_for(sources, license=license, only=only)
    except (KBError, ValueError) as exc:
        abort(str(exc))
    for note in notes:
        console_err.print(f"[yellow]note:[/] {note}", highlight=False)
    columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console_err, disable=not console_err.is_terminal) as progress:
        try:
            kb = build_kb(chosen, kb_dir, engine=engine, on_progress=_Bars(progress),
                          rebuild_command=_rebuild_command(sources, engine, only, license, kb_dir))
        except (KBError, ValueError) as exc:
            progress.stop()
            abort(str(exc))
    stats = kb.stats()
    console_err.print(f"[green]built[/] {stats['passages']:,} passages from {len(stats['sources'])} sources in "
                      f"{stats['build_seconds']:.1f} s ({stats['engine']} {stats['engine_version']}, "
                      f"{stats['index_bytes'] / 1e6:.1f} MB) at {stats['path']}", highlight=False)
    if as_json:
        typer.echo(json.dumps(stats, indent=1, ensure_ascii=False))


@kb_app.command("search")
def search_command(
    query: str = typer.Argument(..., help="keywords; quotes and operators are ignored"),
    k: int = typer.Option(5, "-k", "--k", help="how many passages (1-20)"),
    source: Optional[str] = typer.Option(None, "--source", help="search one source only (see `medgym kb stats`)"),
    kb_dir: Optional[Path] = typer.Option(None, "--dir", help=DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON on stdout"),
) -> None:
    """Rank passages for QUERY with BM25, exactly as the agent's search_knowledge tool does."""
    from rich.table import Table

    from medgym.runtime.kb import search_knowledge

    with _open(kb_dir) as kb:
        result = search_knowledge(kb, query, k=k, source=source)
    if "error" in result:
        abort(result["error"])
    if as_json:
        typer.echo(json.dumps(result, indent=1, ensure_ascii=False))
        return
    table = Table(show_lines=True, title=f"{len(result['results'])} passages for: {result['query']}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("passage")
    for rank, hit in enumerate(result["results"], 1):
        table.add_row(str(rank), f"{hit['score']:.2f}", f"[bold]{_escape(hit['title'])}[/]\n"
                      f"[dim]{_escape(hit['id'])}[/]\n{_escape(hit['snippet'])}")
    console_err.print(table)
    if result.get("note"):
        console_err.print(f"[yellow]note:[/] {result['note']}", highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@kb_app.command("stats")
def stats_command(
    kb_dir: Optional[Path] = typer.Option(None, "--dir", help=DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the stats as JSON on stdout"),
) -> None:
    """Show what the knowledge base holds: sources, licences, counts, engine, size and corpus hashes."""
    from rich.table import Table

    with _open(kb_dir) as kb:
        stats = kb.stats()
    if as_json:
        typer.echo(json.dumps(stats, indent=1, ensure_ascii=False))
        return
    console_err.print(f"{stats['path']}: {stats['passages']:,} passages, {stats['engine']} "
                      f"{stats['engine_version']}, {stats['index_bytes'] / 1e6:.1f} MB, built {stats['built_at']} "
                      f"in {stats['build_seconds']:.1f} s; corpus sha256 {stats['corpus_sha256'][:16]}…",
                      highlight=False)
    table = Table()
    for column in ("source", "passages", "licence", "attribution"):
        table.add_column(column, justify="right" if column == "passages" else "left")
    for name, info in stats["sources"].items():
        table.add_row(name, f"{info['passages']:,}", _escape(info.get("license", "")),
                      _escape(info.get("attribution", "")))
    console_err.print(table)
