"""``qwenchat sessions``: saved conversations (``ask --session NAME`` makes them)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from qwenchat.cli.common import err, out, print_table
from qwenchat.safetext import inert_json, shown

if TYPE_CHECKING:
    from qwenchat.store import SessionStore

app = typer.Typer(help="Saved conversations.", no_args_is_help=True)

Ref = Annotated[str, typer.Argument(help="The session's id or name.")]


def _store() -> SessionStore:
    from qwenchat.store import SessionStore, default_store_path

    store = SessionStore(default_store_path())
    if store.notice:
        err(f"warning: {store.notice}")
    return store


@app.command("list")
def list_() -> None:
    """List the sessions, most recently used first."""
    with _store() as store:
        sessions = store.list_sessions()
        counts = {s.id: len(store.history(s.id)) for s in sessions}
    if not sessions:
        err('no sessions yet; start one with: qwenchat ask --session NAME "..."')
        return
    rows = [
        (
            str(s.id),
            s.name or "",
            s.title or "",
            str(counts[s.id]),
            f"{s.updated.astimezone():%Y-%m-%d %H:%M}",
        )
        for s in sessions
    ]
    print_table(("id", "name", "title", "messages", "updated"), rows)


@app.command("show")
def show(ref: Ref) -> None:
    """Print a session's conversation (the branch in use) as Markdown."""
    with _store() as store:
        out(store.export_session(ref, "md"))


@app.command("export")
def export(
    ref: Ref,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="md (readable) or json (re-importable).")
    ] = "md",
) -> None:
    """Print a session as Markdown, or as JSON with every branch (for `sessions import`).

    Exact when written to a file or pipe; on a terminal, control characters are inert.
    """
    from qwenchat.errors import InputError

    if fmt not in ("md", "json"):
        raise InputError(f"--format {fmt}: expected md or json")
    kind: Literal["md", "json"] = "md" if fmt == "md" else "json"
    with _store() as store:
        text = store.export_session(ref, kind)
    if sys.stdout.isatty():
        text = shown(text) if kind == "md" else inert_json(text)
    print(text)


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A JSON export.")]) -> None:
    """Load a session from a JSON export (as a new session)."""
    from qwenchat.errors import InputError

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from None
    with _store() as store:
        session = store.import_session(text)
    out(f"imported session {session.id}" + (f" ({session.name})" if session.name else ""))


@app.command("rename")
def rename(ref: Ref, title: str) -> None:
    """Give a session a new title."""
    with _store() as store:
        store.rename(ref, title)


@app.command("rm")
def rm(ref: Ref) -> None:
    """Delete a session and its messages."""
    with _store() as store:
        store.delete_session(ref)


@app.command("search")
def search(text: str) -> None:
    """Find messages containing TEXT, across every session."""
    with _store() as store:
        hits = store.search(text)
    if not hits:
        err(f"nothing found for {text!r}")
        raise typer.Exit(1)
    for hit in hits:
        where = hit.session_name or hit.session_title or f"session {hit.session_id}"
        out(f"{hit.session_id} {where} #{hit.message_id} {hit.role}: {hit.snippet}")
