"""Structured output: a JSON Schema the reply must follow, enforced while it is generated.

A :class:`Schema` comes from a JSON Schema (a file or inline JSON), a pydantic model,
or the concise form ``'name, age int, tags list'`` (as ``llm`` spells it: comma- or
newline-separated fields, each ``NAME [TYPE][: description]``, TYPE one of ``str``
(the default), ``int``, ``float``, ``bool``, ``list``). The engine is given the
schema as a grammar (llama.cpp's GBNF, converted by llama-cpp-python's own
converter), so every token the model samples keeps the reply valid; the finished
reply is still parsed and validated, so a server that ignored the grammar is caught.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from qwenchat.engine.base import Constraint
from qwenchat.errors import GenerationError, InputError

_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "list": {"type": "array", "items": {"type": "string"}},
}
_FIELD = re.compile(r"^([A-Za-z_][\w-]*)(?:\s+(\w+))?\s*(?::\s*(.*))?$")


class Schema:
    """A checked JSON Schema and its grammar."""

    def __init__(self, json_schema: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(json_schema)
        except SchemaError as exc:
            raise InputError(f"not a valid JSON Schema: {exc.message}") from None
        self.json_schema = json_schema
        self._validator = Draft202012Validator(json_schema)
        self.constraint = Constraint(gbnf=_to_gbnf(json_schema), json_schema=json_schema)

    @classmethod
    def parse(cls, value: str) -> Schema:
        """``--schema``: a file, inline JSON (starting with ``{``), or the concise form."""
        text = value.strip()
        if not text.startswith("{") and Path(text).is_file():
            try:
                text = Path(text).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read the schema {value}: {exc}") from None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise InputError(f"the schema is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise InputError("the schema must be a JSON object")
            return cls(data)
        return cls(concise(text))

    @classmethod
    def of(cls, model: type[BaseModel]) -> Schema:
        return cls(model.model_json_schema())

    def load(self, text: str) -> Any:
        """The reply parsed and validated; :class:`GenerationError` if it is not valid."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise GenerationError(f"the reply is not JSON ({exc}): {text[:80]!r}") from None
        error = next(iter(self._validator.iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the reply"
            raise GenerationError(
                f"the reply does not match the schema at {where}: {error.message}"
            )
        return data


def concise(spec: str) -> dict[str, Any]:
    """The concise form as a JSON Schema object with every field required."""
    properties: dict[str, Any] = {}
    for part in re.split(r"[,\n]", spec):
        part = part.strip()
        if not part:
            continue
        match = _FIELD.match(part)
        if match is None:
            raise InputError(
                f"cannot read the schema field {part!r}: write NAME [TYPE][: description],"
                " e.g. 'name, age int, tags list'"
            )
        name, kind, description = match.groups()
        if (kind or "str") not in _TYPES:
            raise InputError(f"unknown type {kind!r} for {name}: use one of {', '.join(_TYPES)}")
        field = dict(_TYPES[kind or "str"])
        if description:
            field["description"] = description
        properties[name] = field
    if not properties:
        raise InputError("the schema has no fields: e.g. --schema 'name, age int'")
    return {"type": "object", "properties": properties, "required": list(properties)}


def _to_gbnf(json_schema: dict[str, Any]) -> str:
    # llama-cpp-python's converter, the Python port of llama.cpp's own: it knows which
    # schema features a grammar can express, and raises on the ones it cannot.
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(json_schema))
    except Exception as exc:  # the converter raises bare Exceptions, KeyErrors, ...
        raise InputError(f"the schema cannot be turned into a grammar: {exc}") from None
