"""Shell completion of the names the commands take (typer's own completion, installed
with ``qwenchat --install-completion`` for bash, zsh or fish): models in the models dir,
sessions, personas and tools. Each looks only at local files, never starts a model or
an MCP server, and completes nothing rather than fail."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def _matching(names: Iterable[str], incomplete: str) -> list[str]:
    return sorted({name for name in names if name.startswith(incomplete)})


def _safely(find: Callable[[], Iterable[str]]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        try:
            return _matching(find(), incomplete)
        except Exception:  # a broken config or store: complete nothing, say nothing
            return []

    return complete


def _models() -> Iterable[str]:
    from qwenchat.config import load_settings
    from qwenchat.models import model_files, model_name

    return [model_name(path) for path in model_files(load_settings().resolved_models_dir())]


def _sessions() -> Iterable[str]:
    from qwenchat.store import SessionStore, default_store_path

    path = default_store_path()
    if not path.exists():
        return []
    with SessionStore(path) as store:
        return [s.name or str(s.id) for s in store.list_sessions()]


def _personas() -> Iterable[str]:
    from qwenchat.personas.persona import list_personas

    return list(list_personas())


def _tools() -> Iterable[str]:
    from qwenchat.tools import default_tool_dirs, load_tools

    return load_tools(default_tool_dirs()).registry.names()


complete_models = _safely(_models)
complete_sessions = _safely(_sessions)
complete_personas = _safely(_personas)
complete_tools = _safely(_tools)
