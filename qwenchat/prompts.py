"""The prompts library: named system prompts in Markdown files with YAML front matter.

A prompt file looks like::

    ---
    name: tir-math
    description: one line saying what it is for
    ---
    The system prompt itself, as many lines as it needs.

The built-in prompts are the repository's top-level ``prompts/`` directory,
installed as data under ``<prefix>/share/qwenchat/prompts``. The user's own live
in ``<config dir>/prompts`` and win on a name clash.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwenchat.errors import ConfigError
from qwenchat.paths import config_dir

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""What a prompt's or persona's name may be (it is also its file name)."""
_MAX_FILE_BYTES = 256 * 1024
_FENCE = "---"


class Prompt(BaseModel):
    """A named system prompt."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    text: str = Field(min_length=1)
    path: Path | None = None


def builtin_dir() -> Path:
    """The built-in prompts: a source checkout's ``prompts/``, else the installed data."""
    checkout = Path(__file__).resolve().parent.parent / "prompts"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "qwenchat" / "prompts"


def user_dir() -> Path:
    return config_dir() / "prompts"


def read_markdown(path: Path, kind: str, max_bytes: int) -> tuple[dict[str, object], str]:
    """A Markdown file's YAML front matter (empty if it has none) and body.

    Raises :class:`ConfigError` naming the ``kind`` of file and the path when it is
    too big, unreadable, not UTF-8, or its front matter is broken.
    """
    try:
        if path.stat().st_size > max_bytes:
            raise ConfigError(f"{kind} file {path} is over {max_bytes // 1024} KiB")
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {kind} file {path}: {exc}") from None
    lines = raw.splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        return {}, raw
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == _FENCE), None)
    if end is None:
        raise ConfigError(f"{kind} file {path}: the front matter has no closing '---' line")
    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise ConfigError(f"{kind} file {path}: broken YAML front matter{where}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{kind} file {path}: the front matter is not a mapping of keys")
    return meta, "".join(lines[end + 1 :])


def invalid_file(kind: str, path: Path, exc: ValidationError, hidden: str = "") -> ConfigError:
    """A file's first validation error as one line; ``hidden`` is a key prefix the file
    does not show (e.g. the model nesting its keys)."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]).removeprefix(hidden)
    return ConfigError(f"{kind} file {path}: '{key}': {err['msg']}")


class _Named(Protocol):
    name: str


Entry = TypeVar("Entry", bound=_Named)


def list_library(
    dirs: tuple[Path, Path],
    load: Callable[[Path], Entry],
    warn: Callable[[str], None] = lambda _message: None,
) -> dict[str, Entry]:
    """Every ``*.md`` entry of a library by name: ``dirs`` is (built-in, user's); the
    user's win. A file that does not load is left out, and ``warn`` told why: one broken
    file must not hide the others."""
    found: dict[str, Entry] = {}
    for directory in dirs:
        if directory.is_dir():
            for path in sorted(directory.glob("*.md")):
                try:
                    entry = load(path)
                except ConfigError as exc:
                    warn(str(exc))
                    continue
                found[entry.name] = entry
    return found


def get_from_library(
    kind: str, name: str, dirs: tuple[Path, Path], load: Callable[[Path], Entry]
) -> Entry:
    """The entry called ``name`` (the user's first); raises :class:`ConfigError` listing
    the names there are."""
    for directory in reversed(dirs):
        path = directory / f"{name}.md"
        if path.is_file():
            return load(path)
    entries = list_library(dirs, load)
    if name in entries:  # a file whose front matter renames it
        return entries[name]
    raise ConfigError(f"no {kind} named '{name}' (there are: {', '.join(sorted(entries))})")


def load_prompt_file(path: Path) -> Prompt:
    """Read and validate one prompt file; raises :class:`ConfigError` naming the file."""
    meta, body = read_markdown(path, "prompt", _MAX_FILE_BYTES)
    try:
        return Prompt.model_validate(
            {"name": path.stem, **meta, "text": body.strip(), "path": path}
        )
    except ValidationError as exc:
        raise invalid_file("prompt", path, exc) from None


def list_prompts(warn: Callable[[str], None] = lambda _message: None) -> dict[str, Prompt]:
    """Every prompt by name: the built-in ones, then the user's (which win); ``warn``
    hears of files that do not load."""
    return list_library((builtin_dir(), user_dir()), load_prompt_file, warn)


def get_prompt(name: str) -> Prompt:
    """The prompt called ``name``; raises :class:`ConfigError` listing the names there are."""
    return get_from_library("prompt", name, (builtin_dir(), user_dir()), load_prompt_file)
