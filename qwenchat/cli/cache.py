"""``qwenchat cache``: the KV states kept on disk (the prefix library of
:mod:`qwenchat.engine.kvcache`), what they cost, and clearing them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from qwenchat.cli.common import out, print_table, settings_with

if TYPE_CHECKING:
    from qwenchat.engine.kvcache import KVCache

app = typer.Typer(
    help="The KV states kept on disk, so that prompts that start alike are read once.",
    no_args_is_help=True,
)


def _caches() -> list[tuple[str, KVCache]]:
    """Each model's cache directory under the cache dir, by the model it belongs to."""
    from qwenchat.engine.kvcache import KVCache
    from qwenchat.paths import cache_dir

    root = cache_dir() / "kv"
    if not root.is_dir():
        return []
    cap = settings_with().engine.kv_cache_mb << 20
    # A directory is named <model file stem>-<size>-<mtime> (KVCache.for_model).
    return [
        (d.name.rsplit("-", 2)[0], KVCache(d, cap)) for d in sorted(root.iterdir()) if d.is_dir()
    ]


@app.command("list")
def list_(
    every: Annotated[
        bool, typer.Option("--all", "-a", help="A line per state, not only per model.")
    ] = False,
) -> None:
    """The states kept per model: how many, their size, and the cap."""
    caches = _caches()
    if not caches:
        out("no KV states are kept")
        return
    rows: list[tuple[str, ...]] = []
    for name, cache in caches:
        states = cache.states()
        size = sum(s.bytes for s in states)
        rows.append((name, str(len(states)), f"{size / 2**20:,.1f} MiB", ""))
        if every:
            for state in states:
                used = time.strftime("%Y-%m-%d %H:%M", time.localtime(state.used))
                label = f"  {state.tokens:,} tokens"
                rows.append((label, "", f"{state.bytes / 2**20:,.1f} MiB", used))
    print_table(("model cache", "states", "size", "last used"), rows)
    cap = settings_with().engine.kv_cache_mb
    out(f"cap: {cap:,} MiB per model (engine.kv_cache_mb); least recently used go first")


@app.command("clear")
def clear() -> None:
    """Delete every kept state (prompts are then read afresh, once)."""
    removed = 0
    for _, cache in _caches():
        removed += cache.clear()
    out(f"removed {removed} KV state{'' if removed == 1 else 's'}")
