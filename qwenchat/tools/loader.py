"""Loading tools from directories of Python files.

Every ``*.py`` file not starting with ``_`` in each directory, in name order, is
imported as a private module (``qwenchat_tools_<n>_<stem>``; the directory is on
``sys.path`` only during the import, so a tool file can import a ``_helper.py``
beside it). Which of its functions become tools:

* if the file decorates any function with :func:`~qwenchat.tools.tool`, exactly
  the decorated ones;
* otherwise every public function *defined in that file* (not imported into it,
  name not starting with ``_``).

A file that fails to import, or a function that cannot be a tool, becomes a line
in :attr:`LoadResult.problems` (``"<file>:<line>: <ExcType>: <message>"``) and the
rest still load. Later directories win name clashes (see
:meth:`~qwenchat.tools.ToolRegistry.add`), so user tools can replace built-ins.
"""

from __future__ import annotations

import ctypes
import importlib.util
import inspect
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from types import FunctionType, ModuleType

from pydantic import BaseModel, ConfigDict

from qwenchat.paths import config_dir
from qwenchat.tools.builtin import builtin_tools
from qwenchat.tools.registry import ToolDefinitionError, ToolRegistry, is_marked, tool_from_function

__all__ = ["LoadResult", "default_tool_dirs", "load_tools"]

_module_ids = count()  # unique module names, so files of the same name never collide
IMPORT_TIMEOUT_S = 5.0
"""How long one tool file may take to import."""


class LoadResult(BaseModel):
    """The loaded tools and one line per file or function that could not be loaded."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    registry: ToolRegistry
    problems: list[str]


def default_tool_dirs() -> list[Path]:
    """The user's tools directory, ``<config dir>/tools``, if it exists."""
    user_dir = config_dir() / "tools"
    return [user_dir] if user_dir.is_dir() else []


def load_tools(dirs: Sequence[Path], include_builtin: bool = True) -> LoadResult:
    """Load the built-in tools, then the tools of each directory in ``dirs``, in order.

    Problems (a missing directory, a file that fails to import, a function that
    cannot be a tool, a tool replacing another of the same name) are reported in
    :attr:`LoadResult.problems`, never raised.
    """
    registry = ToolRegistry(builtin_tools() if include_builtin else ())
    problems: list[str] = []
    for directory in dirs:
        if not directory.is_dir():
            problems.append(f"{directory}: not a directory")
            continue
        for path in sorted(p for p in directory.glob("*.py") if not p.name.startswith("_")):
            problems.extend(_load_file(path, registry))
    return LoadResult(registry=registry, problems=problems + registry.warnings)


def _load_file(path: Path, registry: ToolRegistry) -> list[str]:
    """Add the tools of one file to ``registry``; return its problems."""
    try:
        module = _import_in_time(path)
    except _ImportTimeout:
        return [
            f"{path}: did not finish importing within {IMPORT_TIMEOUT_S:g} s (an endless"
            " loop at import?); its tools are left out"
        ]
    except BaseException as exc:  # whatever the file raises, the other files load
        return [_import_problem(path, exc)]
    problems = []
    for func in _tool_functions(module):
        try:
            registry.add(tool_from_function(func, source=str(path)))
        except ToolDefinitionError as exc:
            problems.append(str(exc))
    return problems


class _ImportTimeout(Exception):
    pass


def _import_in_time(path: Path) -> ModuleType:
    """:func:`_import` on a daemon thread, given :data:`IMPORT_TIMEOUT_S`: a file that
    loops at import must not hang ``tools list`` or the app, nor burn a core for the
    rest of the session. A thread cannot be killed, but a Python loop can be interrupted:
    the timeout is raised inside the thread (CPython's ``PyThreadState_SetAsyncExc``,
    checked between bytecodes; a file blocked inside C code runs on)."""
    found: list[ModuleType] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(_import(path))
        except BaseException as exc:  # re-raised below, in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"import:{path.name}", daemon=True)
    thread.start()
    thread.join(IMPORT_TIMEOUT_S)
    if thread.is_alive():
        assert thread.ident is not None
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_ImportTimeout)
        )
        raise _ImportTimeout
    if failed:
        raise failed[0]
    return found[0]


def _import(path: Path) -> ModuleType:
    name = f"qwenchat_tools_{next(_module_ids)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs: dataclasses and pydantic look their module up by name.
    sys.modules[name] = module
    try:
        with _on_sys_path(path.parent):
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _tool_functions(module: ModuleType) -> list[FunctionType]:
    """The decorated functions defined in ``module`` or, if none, all its public ones."""
    defined = [
        obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
    ]
    unique = list({id(f): f for f in defined}.values())  # `alias = func` lists it once
    marked = [f for f in unique if is_marked(f)]
    return marked or unique


def _import_problem(path: Path, exc: BaseException) -> str:
    """``"<file>:<line>: <ExcType>: <message>"``, the line being where in ``path`` it failed."""
    if isinstance(exc, ToolDefinitionError):  # a bad @tool option: already says file:line
        return str(exc)
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return f"{path}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    location = f"{path}:{lines[-1]}" if lines else str(path)
    message = " ".join(str(exc).split())
    return (
        f"{location}: {type(exc).__name__}: {message}"
        if message
        else f"{location}: {type(exc).__name__}"
    )
