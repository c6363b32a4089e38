"""Personas: role-play characters in Markdown files with YAML front matter.

A persona file looks like::

    ---
    name: captain
    char_name: Captain Isolde Marrow
    description: one line saying what it is for
    greeting: "Welcome aboard, {{user}}."
    temperature: 0.9
    tools: []
    ---
    The system prompt: who {{char}} is and how to play them.

The sampling keys (``temperature``, ``top_p``, ...) sit at the top level, as in
aichat roles. ``{{char}}``, ``{{user}}``, ``{{date}}`` and ``{{time}}`` are filled
in by :meth:`Persona.render` when the persona is used. The built-in personas are
``prompts/personas/``; the user's own live in ``<config dir>/personas`` and win on
a name clash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qwenchat import prompts
from qwenchat.config import Sampling
from qwenchat.errors import ConfigError
from qwenchat.paths import config_dir
from qwenchat.prompts import (
    NAME_PATTERN,
    get_from_library,
    invalid_file,
    list_library,
    read_markdown,
)

_MAX_FILE_BYTES = 1024 * 1024
_VARIABLE = re.compile(r"\{\{\s*(char|user|date|time)\s*\}\}", re.IGNORECASE)


class RenderedPersona(BaseModel):
    """A persona's texts with the template variables filled in."""

    system_prompt: str
    greeting: str
    alternate_greetings: list[str]
    post_history_instructions: str


class Persona(BaseModel):
    """A role-play character: system prompt, greeting and the settings to play it with."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    char_name: str | None = Field(None, description="{{char}}; None: the name")
    description: str = ""
    greeting: str = ""
    alternate_greetings: list[str] = []
    post_history_instructions: str = Field(
        "", description="sent after the chat history, as character cards intend"
    )
    model: str | None = None
    sampling: Sampling = Field(
        default_factory=Sampling, description="only the keys a file sets override the user's"
    )
    tools: list[str] | None = Field(None, description="None: the usual tools; []: none")
    user_name: str | None = Field(None, description="{{user}} unless the caller names the user")
    extra: dict[str, Any] = Field(
        {}, description="an imported card's fields that qwenchat does not use, kept as they were"
    )
    system_prompt: str = Field(min_length=1)
    path: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _gather_sampling(cls, data: Any) -> Any:
        """The file has the sampling keys at the top level; the model keeps them together."""
        if not isinstance(data, dict):
            return data
        keys = [key for key in Sampling.model_fields if key in data]
        if not keys:
            return data
        rest = {key: value for key, value in data.items() if key not in keys}
        return {**rest, "sampling": {key: data[key] for key in keys}}

    def sampling_over(self, base: Sampling) -> Sampling:
        """``base`` (the user's settings) with the keys this persona sets replaced."""
        return base.model_copy(update=self.sampling.model_dump(exclude_unset=True))

    def render(self, user_name: str | None = None, now: datetime | None = None) -> RenderedPersona:
        """The texts with ``{{char}}``, ``{{user}}``, ``{{date}}`` and ``{{time}}`` filled in."""
        now = now or datetime.now()
        values = {
            "char": self.char_name or self.name,
            "user": user_name or self.user_name or "User",
            "date": f"{now:%B} {now.day}, {now.year}",
            "time": f"{now:%H:%M}",
        }

        def fill(text: str) -> str:
            return _VARIABLE.sub(lambda match: values[match.group(1).lower()], text)

        return RenderedPersona(
            system_prompt=fill(self.system_prompt),
            greeting=fill(self.greeting),
            alternate_greetings=[fill(text) for text in self.alternate_greetings],
            post_history_instructions=fill(self.post_history_instructions),
        )

    def to_markdown(self) -> str:
        """The persona as a persona file (what :func:`load_persona_file` reads back)."""
        meta = self.model_dump(
            exclude={"sampling", "extra", "system_prompt", "path"}, exclude_defaults=True
        )
        meta.update(self.sampling.model_dump(exclude_unset=True))
        if self.extra:
            meta["extra"] = self.extra
        front = yaml.dump(meta, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)
        return f"---\n{front}---\n{self.system_prompt}\n"


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, so greetings stay readable when edited."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def builtin_dir() -> Path:
    return prompts.builtin_dir() / "personas"


def user_dir() -> Path:
    return config_dir() / "personas"


def load_persona_file(path: Path) -> Persona:
    """Read and validate one persona file; raises :class:`ConfigError` naming the file."""
    meta, body = read_markdown(path, "persona", _MAX_FILE_BYTES)
    if not body.strip():
        raise ConfigError(
            f"persona file {path} has no system prompt: write it below the front matter"
        )
    try:
        return Persona.model_validate(
            {"name": path.stem, **meta, "system_prompt": body.strip(), "path": path}
        )
    except ValidationError as exc:
        raise invalid_file("persona", path, exc, hidden="sampling.") from None


def list_personas(warn: Callable[[str], None] = lambda _message: None) -> dict[str, Persona]:
    """Every persona by name: the built-in ones, then the user's (which win); ``warn``
    hears of files that do not load."""
    return list_library((builtin_dir(), user_dir()), load_persona_file, warn)


def get_persona(name: str) -> Persona:
    """The persona called ``name``; raises :class:`ConfigError` listing the names there are."""
    return get_from_library("persona", name, (builtin_dir(), user_dir()), load_persona_file)


def save_persona(persona: Persona) -> Path:
    """Write ``persona`` to the user's personas dir as ``<name>.md``; never overwrites a file."""
    path = user_dir() / f"{persona.name}.md"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:
            file.write(persona.to_markdown())
    except FileExistsError:
        raise ConfigError(
            f"persona file {path} already exists: choose another name or delete that file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write persona file {path}: {exc}") from None
    return path
