"""Tools from Python functions: schemas, validation, running, the registry, the calculator."""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

from qwenchat.chatml import render
from qwenchat.errors import InputError, QwenchatError
from qwenchat.tools import (
    Tool,
    ToolArgumentError,
    ToolDefinitionError,
    ToolRegistry,
    ToolRunError,
    tool,
    tool_from_function,
)
from qwenchat.tools.builtin import builtin_tools, calculator


def run(t: Tool, arguments: Any) -> str:
    return asyncio.run(t.run(arguments))


# --- schema derivation ----------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


def convert_units(value: float, from_unit: Literal["m", "km"], to_unit: Literal["m", "km"]) -> str:
    """Convert a length.

    Handles metres and kilometres.

    Args:
        value: the length to convert.
        from_unit: the unit of value.
        to_unit: the unit
            to convert to.

    Returns:
        The converted length.
    """
    return f"{value} {from_unit} in {to_unit}"


def search(
    query: str,
    tags: list[str],
    limit: int = 10,
    exact: bool = False,
    ids: list[int] | None = None,
    color: Color = Color.RED,
    priority: Optional[Priority] = None,
) -> list[str]:
    """Search the notes.

    Args:
        query: words to look for.
        limit: the most results to return.
        color: the notes' color.
    """
    return [query]


def test_exact_schema_for_literals_and_docstrings() -> None:
    assert tool_from_function(convert_units).spec() == {
        "type": "function",
        "function": {
            "name": "convert_units",
            "description": "Convert a length.\n\nHandles metres and kilometres.",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number", "description": "the length to convert."},
                    "from_unit": {
                        "type": "string",
                        "enum": ["m", "km"],
                        "description": "the unit of value.",
                    },
                    "to_unit": {
                        "type": "string",
                        "enum": ["m", "km"],
                        "description": "the unit to convert to.",
                    },
                },
                "required": ["value", "from_unit", "to_unit"],
            },
        },
    }


def test_exact_schema_for_lists_enums_optionals_and_defaults() -> None:
    assert tool_from_function(search).parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "words to look for."},
            "tags": {"type": "array", "items": {"type": "string"}},
            "limit": {
                "type": "integer",
                "description": "the most results to return.",
                "default": 10,
            },
            "exact": {"type": "boolean", "default": False},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "color": {
                "type": "string",
                "enum": ["red", "green"],
                "description": "the notes' color.",
                "default": "red",
            },
            "priority": {"type": "integer", "enum": [1, 2]},
        },
        "required": ["query", "tags"],
    }


class Point(BaseModel):
    x: float
    y: float


def test_schema_has_no_titles_or_refs() -> None:
    def place(where: Point, mode: Literal["fast"], n: Annotated[int, Field(ge=1)] = 1) -> str:
        """Place a marker."""
        return ""

    text = json.dumps(tool_from_function(place).parameters)
    assert "title" not in text and "$ref" not in text and "$defs" not in text
    props = tool_from_function(place).parameters["properties"]
    assert props["where"] == {
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"],
    }
    assert props["mode"] == {"type": "string", "enum": ["fast"]}
    assert props["n"] == {"type": "integer", "minimum": 1, "default": 1}


def test_keys_are_ordered_for_reading() -> None:
    assert list(tool_from_function(search).parameters["properties"]["color"]) == [
        "type",
        "enum",
        "description",
        "default",
    ]


def test_parameter_names_that_clash_with_pydantic_work() -> None:
    def shadow(json: str, model_config: int = 0, copy: bool = False) -> str:
        """Shadow names."""
        return f"{json}{model_config}{copy}"

    t = tool_from_function(shadow)
    assert list(t.parameters["properties"]) == ["json", "model_config", "copy"]
    assert run(t, {"json": "a", "model_config": 2}) == "a2False"


def test_decorator_options() -> None:
    @tool(name="now", safe=True, timeout=5, display_name="Clock")
    def current_time() -> str:
        """The time."""
        return "noon"

    t = tool_from_function(current_time, source="/x/clock.py")
    assert (t.name, t.safe, t.timeout, t.display_name, t.source) == (
        "now",
        True,
        5.0,
        "Clock",
        "/x/clock.py",
    )
    assert current_time() == "noon"  # the function is returned unchanged


def test_bare_decorator_and_defaults() -> None:
    def plain() -> str:
        """Plain."""
        return ""

    assert tool(plain) is plain
    t = tool_from_function(plain)
    assert (t.name, t.safe, t.timeout, t.display_name, t.source) == (
        "plain",
        False,
        30.0,
        "plain",
        "builtin",
    )


def test_bad_decorator_option_is_a_definition_error() -> None:
    with pytest.raises(ToolDefinitionError, match="option 'name'"):

        @tool(name="two words")
        def f() -> None:
            """F."""


def no_hint(x, y: int) -> int:  # type: ignore[no-untyped-def]
    """Add."""
    return x + y


def no_doc(x: int) -> int:
    return x


def star_args(*xs: int) -> int:
    """Sum."""
    return sum(xs)


def star_kwargs(**kw: int) -> int:
    """Count."""
    return len(kw)


class Opaque:
    pass


def arbitrary(thing: Opaque) -> str:
    """Use a thing."""
    return ""


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (no_hint, "parameter 'x' has no type hint"),
        (no_doc, "has no docstring"),
        (star_args, r"\*args and \*\*kwargs are not allowed \('xs'\)"),
        (star_kwargs, r"\*args and \*\*kwargs are not allowed \('kw'\)"),
        (arbitrary, "parameter 'thing' has an unsupported type Opaque"),
    ],
)
def test_definition_errors_name_function_file_and_parameter(func: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message) as info:
        tool_from_function(func)
    text = str(info.value)
    assert f"test_tools.py:{func.__code__.co_firstlineno}: cannot use '{func.__name__}'" in text
    assert isinstance(info.value, InputError) and info.value.exit_code == 2


def test_spec_renders_in_the_chat_template() -> None:
    spec = tool_from_function(convert_units).spec()
    prompt = render([{"role": "user", "content": "hi"}], tools=[spec])
    assert "<tools>\n" + json.dumps(spec, ensure_ascii=False) + "\n</tools>" in prompt


# --- validation ------------------------------------------------------------------------


def test_validate_normalizes_and_fills_defaults() -> None:
    t = tool_from_function(search)
    assert t.check_arguments({"query": "q", "tags": [], "limit": "5", "color": "green"}) == {
        "query": "q",
        "tags": [],
        "limit": 5,
        "exact": False,
        "ids": None,
        "color": "green",
        "priority": None,
    }
    assert t.check_arguments('{"query": "q", "tags": ["a"]}')["tags"] == ["a"]  # a JSON string


def test_validate_none_means_no_arguments() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    assert tool_from_function(ping).check_arguments(None) == {}


EXPECTED = '; expected {"value": number, "from_unit": "m"|"km", "to_unit": "m"|"km"}'


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (
            {"value": "ten", "from_unit": "m", "to_unit": "km"},
            "'value': Input should be a valid number, unable to parse string as a number",
        ),
        ({"value": 1, "from_unit": "m"}, "'to_unit': Field required"),
        (
            {"value": 1, "from_unit": "m", "to_unit": "km", "precise": True},
            "'precise': Extra inputs are not permitted",
        ),
        (
            {"value": 1, "from_unit": "mi", "to_unit": "km"},
            "'from_unit': Input should be 'm' or 'km'",
        ),
        ([1, "m", "km"], "the arguments must be a JSON object"),
    ],
)
def test_validation_errors_are_model_readable(arguments: Any, problem: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        tool_from_function(convert_units).check_arguments(arguments)
    assert str(info.value) == f"invalid arguments for convert_units: {problem}{EXPECTED}"


def test_validation_error_paths_into_lists() -> None:
    with pytest.raises(ToolArgumentError, match=r"'tags\[1\]': Input should be a valid string"):
        tool_from_function(search).check_arguments({"query": "q", "tags": ["a", 2]})


def test_expected_marks_optional_parameters() -> None:
    with pytest.raises(ToolArgumentError) as info:
        tool_from_function(search).check_arguments({})
    assert str(info.value).endswith(
        'expected {"query": string, "tags": string[], "limit"?: integer, "exact"?: boolean,'
        ' "ids"?: integer[], "color"?: "red"|"green", "priority"?: 1|2}'
    )


# --- running ---------------------------------------------------------------------------


def test_run_sync_passes_validated_python_values() -> None:
    seen: dict[str, Any] = {}

    def pick(color: Color, priority: Priority = Priority.LOW) -> str:
        """Pick."""
        seen.update(color=color, priority=priority)
        return "ok"

    assert run(tool_from_function(pick), {"color": "green", "priority": "2"}) == "ok"
    assert seen == {"color": Color.GREEN, "priority": Priority.HIGH}


def test_run_async() -> None:
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        await asyncio.sleep(0)
        return a + b

    assert run(tool_from_function(add), {"a": 2, "b": 3}) == "5"


def test_run_validates_too() -> None:
    with pytest.raises(ToolArgumentError):
        run(tool_from_function(convert_units), {"value": 1})


def test_raising_tool_gives_type_and_message() -> None:
    def fail(x: int) -> str:
        """Fail."""
        raise ValueError(f"bad x: {x}\nsecond line")

    with pytest.raises(ToolRunError) as info:
        run(tool_from_function(fail), {"x": 3})
    assert str(info.value) == "ValueError: bad x: 3 second line"
    assert isinstance(info.value, QwenchatError)


def test_a_tools_own_timeout_error_is_not_a_timeout() -> None:
    async def fetch() -> str:
        """Fetch."""
        raise TimeoutError("server did not answer")

    with pytest.raises(ToolRunError, match=r"^TimeoutError: server did not answer$"):
        run(tool_from_function(fetch), {})


def test_sys_exit_in_a_tool_is_a_run_error() -> None:
    def leave() -> None:
        """Leave."""
        raise SystemExit(3)

    with pytest.raises(ToolRunError, match=r"^SystemExit: 3$"):
        run(tool_from_function(leave), {})


@pytest.mark.parametrize("is_async", [False, True])
def test_timeout(is_async: bool) -> None:
    if is_async:

        async def slow() -> str:
            """Slow."""
            await asyncio.sleep(5)
            return "late"
    else:

        def slow() -> str:  # type: ignore[misc]
            """Slow."""
            time.sleep(1)
            return "late"

    start = time.perf_counter()
    with pytest.raises(ToolRunError, match=r"^timed out after 0\.05 s$"):
        run(tool_from_function(tool(timeout=0.05)(slow)), {})
    assert time.perf_counter() - start < 0.9  # the abandoned thread does not hold asyncio.run


@dataclass
class Reading:
    sensor: str
    value: float


class Report(BaseModel):
    title: str
    readings: list[Reading]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain text", "plain text"),
        (None, "(no output)"),
        (42, "42"),
        (True, "true"),
        ({"city": "Zürich", "n": [1, 2]}, '{"city": "Zürich", "n": [1, 2]}'),
        (["a", None], '["a", null]'),
        (
            Report(title="t", readings=[Reading("s", 1.5)]),
            '{"title": "t", "readings": [{"sensor": "s", "value": 1.5}]}',
        ),
        (Color.RED, '"red"'),
        (Opaque, str(Opaque)),
    ],
)
def test_results_become_text(result: Any, text: str) -> None:
    def give() -> Any:
        """Give."""
        return result

    assert run(tool_from_function(give), {}) == text


# --- registry --------------------------------------------------------------------------


def make(name: str, source: str = "builtin") -> Tool:
    def f() -> str:
        """Do it."""
        return name

    return tool_from_function(tool(name=name)(f), source=source)


def test_registry_mapping_behaviour() -> None:
    registry = ToolRegistry([make("a"), make("b")])
    assert registry.names() == ["a", "b"] and len(registry) == 2
    assert "a" in registry and "z" not in registry
    assert [t.name for t in registry] == ["a", "b"]
    assert registry.get("b").name == "b" and registry.get("z") is None  # type: ignore[union-attr]
    assert [s["function"]["name"] for s in registry.specs()] == ["a", "b"]
    assert [s["function"]["name"] for s in registry.specs(["b"])] == ["b"]


def test_registry_name_clash_later_wins_with_warning() -> None:
    registry = ToolRegistry([make("a", "one.py"), make("b")])
    registry.add(make("a", "two.py"))
    assert registry.names() == ["a", "b"]
    assert registry.get("a").source == "two.py"  # type: ignore[union-attr]
    assert registry.warnings == ["tool 'a' from two.py replaces the one from one.py"]


def test_registry_select() -> None:
    registry = ToolRegistry([make("a"), make("b"), make("c")])
    assert registry.select(["c", "a"]).names() == ["c", "a"]
    with pytest.raises(InputError, match=r"unknown tool 'x'; available tools: a, b, c"):
        registry.select(["a", "x"])


def test_spec_is_a_copy() -> None:
    t = tool_from_function(convert_units)
    t.spec()["function"]["parameters"]["properties"].clear()
    assert t.spec()["function"]["parameters"]["properties"]


# --- calculator --------------------------------------------------------------------------


def test_calculator_is_a_safe_builtin_tool() -> None:
    (calc,) = builtin_tools()
    assert (calc.name, calc.safe, calc.source) == ("calculator", True, "builtin")
    assert calc.description.startswith("Evaluate an arithmetic expression exactly")
    assert run(calc, {"expression": "123456789 * 987654321"}) == "121932631112635269"


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("123456789 * 987654321", "121932631112635269"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-2 ** 2", "-4"),
        ("2 ** 3 ** 2", "512"),
        ("7 // 2 + 7 % 3", "4"),
        ("10 / 4", "2.5"),
        ("1 / 3", "0.3333333333333333"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** -3", "0.125"),
        ("(10 ** 20 + 1) / 1", "100000000000000000001"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("sqrt(16)", "4"),
        ("sqrt(2)", "1.4142135623730951"),
        ("abs(-3) + floor(2.7) + ceil(2.1)", "8"),
        ("round(2.567, 2)", "2.57"),
        ("round(2.5)", "2"),
        ("log(e)", "1.0"),
        ("log(100, 10)", "2.0"),
        ("exp(0) + sin(0) + cos(0) + tan(0)", "2.0"),
        ("round(sin(pi / 2), 6)", "1.0"),
    ],
)
def test_calculator_values(expression: str, result: str) -> None:
    assert calculator(expression) == result


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("x + 1", "unknown name 'x'"),
        ("__import__('os').system('true')", "unknown function"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("math.sqrt(4)", "unknown function 'math.sqrt'"),
        ("(1).__class__", "is not allowed"),
        ("[x for x in ()]", "is not allowed"),
        ("lambda: 1", "is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("1 < 2", "is not allowed"),
        ("2 ^ 3", "use \\*\\*"),
        ("sqrt(x=4)", "plain arguments only"),
        ("sqrt(1, 2)", r"sqrt\(\) takes 1 argument\(s\), not 2"),
        ("sqrt(-1)", r"sqrt\(-1\): math domain error"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("1 +", "not a valid expression"),
        ("2 ** 100000", "exponent is too large"),
        ("9 ** 9 ** 9", "exponent is too large"),
        ("10 ** 6000 * 10 ** 6000", "over 10000 digits"),
        ("exp(1000)", "too large"),
        ("1" + " + 1" * 300, "too long"),
    ],
)
def test_calculator_errors(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calculator(expression)


def test_calculator_error_reaches_the_model_as_run_error() -> None:
    with pytest.raises(ToolRunError, match=r"^ValueError: division by zero$"):
        run(builtin_tools()[0], {"expression": "1/0"})


def test_calculator_prints_results_past_pythons_digit_limit() -> None:
    assert calculator("10 ** 9000") == "1" + "0" * 9000
