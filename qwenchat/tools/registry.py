"""Python functions as Qwen2.5 tools: schema derivation, validation, running.

A tool is a typed Python function with a Google-style docstring. Its summary and
description become the tool's description, its ``Args:`` section the parameter
descriptions, and its type hints the JSON schema, derived with pydantic and then
simplified for small models: no ``title``, no ``$defs``/``$ref`` (enums and nested
models are written inline), ``Optional[X] = None`` written as plain ``X``.

:func:`tool` is an optional decorator that only attaches options (name, safety,
timeout, display name); :func:`tool_from_function` turns a function into a
:class:`Tool`, and :class:`ToolRegistry` holds the tools of a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import os
import re
import threading
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

import docstring_parser
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticUserError,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import PydanticSerializationError, to_jsonable_python

from qwenchat.errors import InputError, QwenchatError

__all__ = [
    "DEFAULT_TIMEOUT",
    "Tool",
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolError",
    "ToolOptions",
    "ToolRegistry",
    "ToolRunError",
    "is_marked",
    "to_text",
    "tool",
    "tool_from_function",
]

DEFAULT_TIMEOUT = 30.0
NO_OUTPUT = "(no output)"
_OPTIONS_ATTR = "__qwenchat_tool__"
_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what OpenAI-style function names allow
# Schema keywords whose values are schemas, or lists or maps of schemas.
_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_KEY_ORDER = ("type", "enum", "items", "properties", "required")
_LIST_ITEM = re.compile(r"([-*•]|\d+[.)])\s")

F = TypeVar("F", bound=Callable[..., Any])


class ToolError(QwenchatError):
    """Base class of the tool errors."""


class ToolDefinitionError(ToolError, InputError):
    """A function cannot become a tool; the message names its file, line and parameter."""


class ToolArgumentError(ToolError):
    """The model's arguments do not fit the tool's schema; the message is meant for the model."""


class ToolRunError(ToolError):
    """The tool raised or timed out; the message (``"ValueError: ..."``) is meant for the model."""


class ToolFailed(ToolError):
    """The tool ran and failed, and ``report`` is the result to show as it is (the
    ``python`` tool's output and error line): a failed call, not a tool that broke."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class ToolOptions(BaseModel):
    """What :func:`tool` attaches to a function; ``None`` means "derive it"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=_NAME_PATTERN)
    safe: bool = False
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    display_name: str | None = None


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *,
    name: str | None = None,
    safe: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    display_name: str | None = None,
) -> Callable[[F], F]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    safe: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    display_name: str | None = None,
) -> Any:
    """Mark a function as a tool, bare (``@tool``) or with options (``@tool(safe=True)``).

    Only attaches a :class:`ToolOptions`; the function is returned unchanged.

    Args:
        func: the function, when used bare.
        name: the name the model calls (default: the function's name).
        safe: whether it may run without the user's approval (read-only, confined).
        timeout: seconds before a call is abandoned.
        display_name: how the UI names the tool (default: the name).

    Raises:
        ToolDefinitionError: an option is invalid (e.g. a name with spaces).
    """

    def mark(f: F) -> F:
        try:
            options = ToolOptions(name=name, safe=safe, timeout=timeout, display_name=display_name)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ToolDefinitionError(
                f"{_where(f)}: @tool option '{err['loc'][0]}' for {f.__name__}(): {err['msg']}"
            ) from None
        setattr(f, _OPTIONS_ATTR, options)
        return f

    return mark if func is None else mark(func)


def is_marked(func: Callable[..., Any]) -> bool:
    """Whether :func:`tool` decorated ``func``."""
    return isinstance(getattr(func, _OPTIONS_ATTR, None), ToolOptions)


class Tool(BaseModel):
    """A function the model can call, with its schema and run settings.

    Build it with :func:`tool_from_function`. :meth:`check_arguments` checks the model's
    arguments; :meth:`run` validates them again and calls the function.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]
    safe: bool = False
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    display_name: str
    source: str = Field(description='the file that defined it, or "builtin"')
    function: Callable[..., Any] = Field(repr=False, exclude=True)
    # Validates the arguments; its fields are aliased to the parameter names.
    arguments_model: type[BaseModel] = Field(repr=False, exclude=True)

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style spec that Qwen2.5's template renders in its tools block."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    def check_arguments(self, arguments: Any) -> dict[str, Any]:
        """Check the model's arguments; return them normalized, defaults filled, JSON-able.

        ``None`` means no arguments and a string holding a JSON object is decoded,
        since small models produce both. Lax coercion applies (``"5"`` for an int).

        Raises:
            ToolArgumentError: wrong type, missing required or unknown key; the
                message says what is wrong and the expected arguments.
        """
        return self._parse(arguments).model_dump(mode="json", by_alias=True)

    async def run(self, arguments: Any) -> str:
        """Check ``arguments`` as :meth:`check_arguments` does, call the function, return
        its text.

        Async functions are awaited; sync ones run in a daemon thread, so a call that
        outlives :attr:`timeout` is abandoned without blocking the event loop's shutdown
        or the interpreter's exit (a thread cannot be killed: it runs on unobserved).

        Raises:
            ToolArgumentError: the arguments are invalid.
            ToolRunError: the function raised (``"<ExcType>: <message>"``) or timed out.
        """
        call = self._start(arguments)
        task = asyncio.ensure_future(_guarded(call))
        try:
            # asyncio.wait, not wait_for: a TimeoutError the tool raises is not a timeout.
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        finally:
            task.cancel()  # no-op when done; abandons it on timeout or when run() is cancelled
        if not done:
            raise ToolRunError(f"timed out after {self.timeout:g} s")
        try:
            return to_text(task.result())
        except ToolError:
            raise
        except Exception as exc:  # a result whose __str__ raises, say
            raise ToolRunError(f"its result cannot be shown as text ({_describe(exc)})") from None

    def _start(self, arguments: Any) -> Awaitable[Any]:
        """The call of :attr:`function` with the validated arguments, to be awaited."""
        parsed = self._parse(arguments)
        kwargs = {
            field.alias or key: getattr(parsed, key)
            for key, field in self.arguments_model.model_fields.items()
        }
        if _is_async(self.function):
            return self.function(**kwargs)  # type: ignore[no-any-return]
        return _in_thread(self.function, kwargs)

    def _parse(self, arguments: Any) -> BaseModel:
        try:
            return self.arguments_model.model_validate(_as_object(arguments))
        except ValidationError as exc:
            problems = "; ".join(_describe_error(err) for err in exc.errors()[:3])
            expected = _expected(self.parameters)
            raise ToolArgumentError(
                f"invalid arguments for {self.name}: {problems}; expected {expected}"
            ) from None


class SchemaTool(Tool):
    """A tool described by a JSON Schema rather than a typed function (an MCP server's):
    its arguments are checked with ``jsonschema`` and handed to :attr:`function`, a
    plain function of one dict run in a thread like any other."""

    arguments_model: type[BaseModel] | None = Field(None, repr=False, exclude=True)  # type: ignore[assignment]

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        # What the chat template and the call grammar expect of a tool's parameters.
        return {"type": "object", "properties": {}, "required": [], **parameters}

    def check_arguments(self, arguments: Any) -> dict[str, Any]:
        """Check ``arguments`` against the schema (``None`` and a JSON string as for
        :meth:`Tool.check_arguments`); return them as given. Raises :class:`ToolArgumentError`."""
        from jsonschema import Draft202012Validator

        value = _as_object(arguments)
        errors = list(Draft202012Validator(self.parameters).iter_errors(value))
        if errors:
            problems = "; ".join(
                f"'{'.'.join(map(str, e.absolute_path))}': {e.message}"
                if e.absolute_path
                else e.message
                for e in errors[:3]
            )
            raise ToolArgumentError(
                f"invalid arguments for {self.name}: {problems};"
                f" expected {_expected(self.parameters)}"
            )
        return value  # type: ignore[no-any-return]

    def _start(self, arguments: Any) -> Awaitable[Any]:
        return _in_thread(self.function, {"arguments": self.check_arguments(arguments)})


def tool_from_function(func: Callable[..., Any], source: str = "builtin") -> Tool:
    """Build a :class:`Tool` from a typed function with a docstring.

    Options come from :func:`tool` when it decorated ``func``. Parameter types may
    be anything pydantic validates and describes in JSON schema: ``str``, ``int``,
    ``float``, ``bool``, ``list[X]``, ``dict[str, X]``, ``Literal[...]``, ``Enum``
    subclasses, pydantic models, ``Optional[X]``, ``Annotated[X, Field(...)]``.

    Raises:
        ToolDefinitionError: no docstring, a parameter without a type hint or with
            an unsupported type, ``*args``/``**kwargs`` or positional-only
            parameters, a generator function; the message names the function, its
            file and line, and the parameter.
    """
    where = f"{_where(func)}: cannot use {getattr(func, '__name__', func)!r} as a tool"
    if not inspect.isfunction(inspect.unwrap(func)):
        raise ToolDefinitionError(f"{where}: it is not a Python function")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ToolDefinitionError(
            f"{where}: generator functions are not supported; return the result"
        )
    try:
        doc = docstring_parser.parse(inspect.getdoc(func) or "")
    except docstring_parser.ParseError as exc:
        raise ToolDefinitionError(f"{where}: cannot parse its docstring: {exc}") from None
    if not doc.description:
        raise ToolDefinitionError(f"{where}: it has no docstring (the model needs a description)")
    options: ToolOptions = getattr(func, _OPTIONS_ATTR, ToolOptions())
    name = options.name or func.__name__
    model = _arguments_model(func, name, _param_docs(doc), where)
    return Tool(
        name=name,
        description=_unwrap(doc.description),
        parameters=_clean_parameters(model.model_json_schema(), where),
        safe=options.safe,
        timeout=options.timeout,
        display_name=options.display_name or name,
        source=source,
        function=func,
        arguments_model=model,
    )


class ToolRegistry:
    """The tools of a session: an ordered mapping of name to :class:`Tool`.

    Iterating yields the tools; ``in`` tests names. Adding a tool whose name is
    taken replaces the earlier one (it keeps its place) and records a line in
    :attr:`warnings`.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self.warnings: list[str] = []
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        """Add ``tool``; a tool of the same name is replaced, with a warning."""
        old = self._tools.get(tool.name)
        if old is not None:
            self.warnings.append(
                f"tool '{tool.name}' from {tool.source} replaces the one from {old.source}"
            )
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The specs for the chat template, of all tools or of ``names`` (see :meth:`select`)."""
        chosen = self if names is None else self.select(names)
        return [t.spec() for t in chosen]

    def select(self, names: Sequence[str]) -> ToolRegistry:
        """A registry of the named tools, in the order given.

        Raises:
            InputError: a name is unknown; the message lists the available tools.
        """
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            available = ", ".join(self._tools) or "none"
            raise InputError(
                f"unknown tool {', '.join(map(repr, unknown))}; available tools: {available}"
            )
        return ToolRegistry(self._tools[n] for n in dict.fromkeys(names))

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"


def to_text(result: Any) -> str:
    """A tool's return value as the model sees it.

    A string as is; ``None`` as ``"(no output)"``; anything JSON-able (numbers,
    dicts, lists, pydantic models, dataclasses, dates) as one-line JSON, written
    the way the chat template writes JSON; anything else with ``str()``.
    """
    if isinstance(result, str):
        return result
    if result is None:
        return NO_OUTPUT
    try:
        return json.dumps(to_jsonable_python(result), ensure_ascii=False)
    except (PydanticSerializationError, TypeError, ValueError):
        return str(result)


# --- building the schema ------------------------------------------------------------


def _where(func: Callable[..., Any]) -> str:
    code = getattr(inspect.unwrap(func), "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "<unknown file>"


def _unwrap(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph; keep paragraphs and list items apart.

    Docstrings wrap lines for an editor's width; the model would read each break
    as structure.
    """
    return "\n\n".join(_unwrap_paragraph(p) for p in re.split(r"\n\s*\n", text.strip()))


def _unwrap_paragraph(paragraph: str) -> str:
    lines = [line.strip() for line in paragraph.splitlines()]
    joined = lines[:1]
    for line in lines[1:]:
        if _LIST_ITEM.match(line):
            joined.append(line)
        else:
            joined[-1] += " " + line
    return "\n".join(joined)


def _param_docs(doc: docstring_parser.Docstring) -> dict[str, str]:
    # One line each: the Args section wraps its lines for people, not for the schema.
    return {p.arg_name: " ".join(p.description.split()) for p in doc.params if p.description}


def _arguments_model(
    func: Callable[..., Any], name: str, docs: dict[str, str], where: str
) -> type[BaseModel]:
    """The pydantic model of the arguments (fields aliased, so any parameter name works)."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # an unresolvable forward reference, e.g. a typo
        raise ToolDefinitionError(
            f"{where}: cannot resolve its type hints: {_describe(exc)}"
        ) from None
    fields: dict[str, Any] = {}
    for i, param in enumerate(inspect.signature(func).parameters.values()):
        _check_parameter(param, hints, where)
        default = ... if param.default is inspect.Parameter.empty else param.default
        field = Field(default, alias=param.name, description=docs.get(param.name))
        fields[f"arg{i}"] = (hints[param.name], field)
    config = ConfigDict(extra="forbid", protected_namespaces=())
    return create_model(f"{name}_arguments", __config__=config, **fields)


def _check_parameter(param: inspect.Parameter, hints: dict[str, Any], where: str) -> None:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        raise ToolDefinitionError(f"{where}: *args and **kwargs are not allowed ('{param.name}')")
    if param.kind is param.POSITIONAL_ONLY:
        raise ToolDefinitionError(
            f"{where}: parameter '{param.name}' is positional-only; drop the '/'"
        )
    if param.name not in hints:
        raise ToolDefinitionError(f"{where}: parameter '{param.name}' has no type hint")
    try:
        TypeAdapter(hints[param.name]).json_schema()
    except (PydanticUserError, TypeError) as exc:
        raise ToolDefinitionError(
            f"{where}: parameter '{param.name}' has an unsupported type"
            f" {_type_name(hints[param.name])} (use str, int, float, bool, list, Literal, Enum"
            f" or a pydantic model): {_first_line(exc)}"
        ) from None


def _clean_parameters(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """Pydantic's schema reduced to ``{"type": "object", "properties", "required"}``."""
    defs = schema.get("$defs", {})
    required = schema.get("required", [])
    properties = {}
    for name, prop in schema["properties"].items():
        prop = _clean(_inline(prop, defs, where, name))
        if name not in required and prop.get("default", ...) is None:
            prop = _drop_null(prop)
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": required}


def _inline(
    node: Any, defs: dict[str, Any], where: str, param: str, seen: tuple[str, ...] = ()
) -> Any:
    """``node`` with every ``$ref`` replaced by its definition, merged with its sibling keys."""
    if isinstance(node, list):
        return [_inline(item, defs, where, param, seen) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if len(node.get("allOf", ())) == 1:  # older pydantic wraps a $ref with siblings in allOf
        node = {**node.pop("allOf")[0], **node}
    if "$ref" in node:
        ref = node.pop("$ref").rsplit("/", 1)[-1]
        if ref in seen:
            raise ToolDefinitionError(f"{where}: parameter '{param}' has a recursive type ({ref})")
        node = {**_inline(defs[ref], defs, where, param, (*seen, ref)), **node}
    return {key: _inline_value(key, value, defs, where, param, seen) for key, value in node.items()}


def _inline_value(
    key: str, value: Any, defs: dict[str, Any], where: str, param: str, seen: tuple[str, ...]
) -> Any:
    if key == "properties":
        return {name: _inline(sub, defs, where, param, seen) for name, sub in value.items()}
    if key in _SUBSCHEMA or key in _SUBSCHEMA_LISTS:
        return _inline(value, defs, where, param, seen)
    return value  # data (default, enum, const) or a scalar keyword


def _clean(schema: Any) -> Any:
    """Drop ``title``, turn ``const`` into a one-value ``enum``, type enums, order keys."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key == "properties":
            value = {name: _clean(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            value = _clean(value)
        elif key in _SUBSCHEMA_LISTS:
            value = [_clean(sub) for sub in value]
        out["enum" if key == "const" else key] = [value] if key == "const" else value
    if "enum" in out and "type" not in out:
        enum_type = _enum_type(out["enum"])
        if enum_type:
            out["type"] = enum_type
    return _ordered(out)


def _enum_type(values: list[Any]) -> str | None:
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    return None


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    # type first, description and default last: how function specs usually read.
    first = [k for k in _KEY_ORDER if k in schema]
    last = [k for k in ("description", "default") if k in schema]
    middle = [k for k in schema if k not in first and k not in last]
    return {k: schema[k] for k in (*first, *middle, *last)}


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``Optional[X] = None`` as plain ``X``: leaving it out already means None."""
    prop = {k: v for k, v in prop.items() if k != "default"}
    if "anyOf" not in prop:
        return prop
    options = [o for o in prop["anyOf"] if o != {"type": "null"}]
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    return _ordered({**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options})


# --- validating and running ----------------------------------------------------------


def _as_object(arguments: Any) -> Any:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments)
        except ValueError:
            return arguments  # pydantic reports it as "not an object"
        return decoded if isinstance(decoded, dict) else arguments
    return arguments


def _describe_error(err: Any) -> str:
    if not err["loc"]:
        return "the arguments must be a JSON object"
    path = str(err["loc"][0]) + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"][1:]
    )
    return f"'{path}': {err['msg']}"


def _expected(parameters: dict[str, Any]) -> str:
    """A one-line signature such as ``{"value": number, "unit"?: "m"|"km"}``."""
    required = set(parameters["required"])
    items = (
        f"{json.dumps(name)}{'' if name in required else '?'}: {_type_hint(prop)}"
        for name, prop in parameters["properties"].items()
    )
    return "{" + ", ".join(items) + "}"


def _type_hint(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "anyOf" in schema:
        return "|".join(_type_hint(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"{_type_hint(schema.get('items', {}))}[]"
    return str(schema.get("type", "any"))


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(inspect.unwrap(func))


async def _guarded(call: Awaitable[Any]) -> Any:
    """``await call``, its exceptions turned into :class:`ToolRunError`.

    Caught inside the task: a task that raises ``SystemExit`` re-raises it out of the
    event loop, and a tool's ``sys.exit()``, ``KeyboardInterrupt`` or ``GeneratorExit``
    must not end the app. Only the task's own cancellation goes through.
    """
    active = getattr(_in_tool, "active", False)
    _in_tool.active = True  # an async tool runs in this thread
    try:
        return await call
    except (ToolError, asyncio.CancelledError):  # ours (ToolFailed, a server's error): as is
        raise
    except BaseException as exc:
        raise ToolRunError(_describe(exc)) from None
    finally:
        _in_tool.active = active


async def _in_thread(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``func(**kwargs)`` in a daemon thread (see :meth:`Tool.run` for why not ``to_thread``)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # abandoned after a timeout
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def work() -> None:
        result, error = None, None
        _in_tool.active = True  # os._exit() from here raises instead (see _exit_guard)
        try:
            result = func(**kwargs)
        except BaseException as exc:  # delivered to the awaiting task, which decides
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while an abandoned call ran
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(
        target=work, name=f"tool:{getattr(func, '__name__', 'tool')}", daemon=True
    ).start()
    return await future


class ToolExit(BaseException):
    """A tool called ``os._exit()``: raised in its thread instead of ending qwenchat."""


_in_tool = threading.local()
_real_exit = os._exit


def _exit_guard(status: int) -> None:
    """``os._exit`` for the whole process: a tool's call raises :class:`ToolExit` in the
    tool's own thread; any other caller exits as ever. A plain function can end the
    process it is imported into with ``os._exit(0)`` (rc 0, no message) and nothing
    but this catches it."""
    if getattr(_in_tool, "active", False):
        raise ToolExit(f"the tool called os._exit({status}), which would end qwenchat")
    _real_exit(status)


os._exit = _exit_guard


def _describe(exc: BaseException) -> str:
    try:
        message = " ".join(str(exc).split())
    except Exception:  # an exception whose __str__ raises
        message = "(its message cannot be shown)"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)
