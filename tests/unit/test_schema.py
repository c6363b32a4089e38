"""Structured output (qwenchat.schema): schemas, their grammar, and the reply checked."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.errors import GenerationError, InputError
from qwenchat.schema import Schema, concise
from tests.fakes import ScriptedEngine


class Person(BaseModel):
    name: str
    age: int


def test_the_concise_form_is_an_object_of_required_fields() -> None:
    assert concise("name, age int, tags list\nbio: a short bio") == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "bio": {"type": "string", "description": "a short bio"},
        },
        "required": ["name", "age", "tags", "bio"],
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("age integer", "unknown type 'integer' for age"),
        ("1abc", "cannot read the schema field '1abc'"),
        (" , ", "the schema has no fields"),
        ('{"type": "object"', "not valid JSON"),
        ('{"type": "objekt"}', "not a valid JSON Schema"),
        ("[1]", "cannot read the schema field"),
    ],
)
def test_bad_schemas_are_one_clear_input_error(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Schema.parse(value)


def test_a_schema_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(Person.model_json_schema()))
    schema = Schema.parse(str(path))
    assert "root ::=" in schema.constraint.gbnf and schema.constraint.json_schema is not None


def test_replies_are_parsed_and_validated() -> None:
    schema = Schema.of(Person)
    assert schema.load('{"name": "Ada", "age": 36}') == {"name": "Ada", "age": 36}
    with pytest.raises(GenerationError, match="at age"):
        schema.load('{"name": "Ada", "age": "old"}')
    with pytest.raises(GenerationError, match="not JSON"):
        schema.load("Ada, 36")


def test_chat_send_with_a_model_class_returns_the_model_and_constrains_the_engine() -> None:
    engine = ScriptedEngine(['{"name": "Ada", "age": 36}'])
    person = Chat(settings=Settings(), engine=engine).send("Who?", schema=Person)
    assert person == Person(name="Ada", age=36)
    (constraint,) = engine.constraints
    assert constraint is not None and constraint.json_schema == Person.model_json_schema()


def test_a_schema_cannot_go_with_tools() -> None:
    from qwenchat.tools import ToolRegistry, tool_from_function

    def f(x: int) -> int:
        """F.

        Args:
            x: x
        """
        return x

    chat = Chat(
        settings=Settings(), engine=ScriptedEngine([]), tools=ToolRegistry([tool_from_function(f)])
    )
    with pytest.raises(InputError, match="schema cannot be used with tools"):
        chat.stream("hi", schema=Schema.of(Person))
