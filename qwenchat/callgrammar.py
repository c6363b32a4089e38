"""Calls that are always well formed: a grammar for the rest of a call, once one opens.

A reply is generated unconstrained (prose stays free) and watched for the opening
of a call: ``<tool_call>`` anywhere, or, at the very start of the reply, a JSON
object whose first key is ``"name"`` (bare, or in a ```json fence: the way Qwen2.5
0.5B/1.5B write calls at temperature 0). At that point the loop stops the reply and
continues it from exactly that text under :func:`call_constraint`'s grammar: the
name must be one of the enabled tools and the arguments valid against that tool's
schema (required fields present, enums, types), so the call cannot be invented or
malformed. This is llama-server's lazy grammar, done one level up so that every
engine that takes a grammar gets it. The grammar ends with the call; the model then
ends its reply.

The answer after the results has a grammar too, :data:`PROSE`: its first character
may not open JSON, a fence or markup, which is how small models echo a call or a
result instead of answering (the rest of the answer is free).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from qwenchat.engine.base import Constraint

TAG = "<tool_call>"
PROSE = Constraint(gbnf="root ::= [^{[`<\\x20\\t\\n] [^\\x00]*", hint=True)
"""An answer that opens as prose: not with ``{``, ``[``, a fence, markup or space."""
SPACE = '| " " | "\\n"{1,2} [ \\t]{0,20}'
"""Whitespace between a call's tokens: llama.cpp's json-schema-to-grammar rule."""
_BARE = re.compile(r'\A\s*(?:```(?:json)?[ \t]*\n?\s*)?\{\s*"name"')


@dataclass(frozen=True)
class Opening:
    """Where a reply opened a call: the text up to and including the opening."""

    prefix: str
    tagged: bool


MADE_OPENING = Opening(f"{TAG}\n", tagged=True)
"""The opening of a call the loop makes for the model (a described call): the tag; the
grammar then has the model write the call from its ``{"name"`` on."""


def find_opening(text: str) -> Opening | None:
    """The first call opening in a reply so far, if there is one."""
    bare = _BARE.match(text)
    tag = text.find(TAG)
    if bare is not None and (tag < 0 or bare.end() <= tag):
        return Opening(text[: bare.end()], tagged=False)
    if tag >= 0:
        return Opening(text[: tag + len(TAG)], tagged=True)
    return None


def call_constraint(specs: list[dict[str, Any]], opening: Opening) -> Constraint:
    """The grammar of what follows ``opening``: one call of one of these tools."""
    # llama-cpp-python's converter (a port of llama.cpp's) writes each tool's argument
    # rules; one converter for all tools, so they share their primitive rules.
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    # The port's whitespace is one optional space; these models lay calls out over
    # lines ('",\n', '"}\n'), and refusing that token sent greedy decoding into the
    # likeliest allowed one instead: a digit, for ever ("QX 1000000..."). llama.cpp's
    # own converter allows newlines and indents, bounded.
    converter._rules["space"] = SPACE
    choices = []
    for i, spec in enumerate(specs):
        function = spec.get("function", spec)
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        rule = converter.visit(converter.resolve_refs(parameters, "tool"), f"tool{i}-arguments")
        name = json.dumps(json.dumps(function["name"]))  # a GBNF literal of the JSON string
        choices.append(f'{name} space "," space "\\"arguments\\"" space ":" space {rule}')
    rest = f'space ":" space ( {" | ".join(choices)} ) "}}" space'
    if opening.tagged:
        root = f'root ::= "\\n"? "{{" space "\\"name\\"" {rest} "\\n</tool_call>"'
    elif "```" in opening.prefix:
        root = f'root ::= {rest} "\\n```"'
    else:
        root = f"root ::= {rest}"
    return Constraint(gbnf=f"{root}\n{converter.format_grammar()}")


def restricted(spec: dict[str, Any], argument: str, values: list[Any]) -> dict[str, Any]:
    """A copy of a tool's spec whose ``argument`` must be one of ``values``: how the loop
    keeps a small model from writing a docstring's example again (an error saying so
    does not), by offering the phrases or numbers of the user's message instead
    (:func:`qwenchat.provenance.offers`)."""
    spec = copy.deepcopy(spec)
    function = spec.get("function", spec)
    schema = function["parameters"]["properties"][argument]
    function["parameters"]["properties"][argument] = {
        **{k: v for k, v in schema.items() if k in ("description", "title")},
        "enum": values,
    }
    return spec


class OpeningWatch:
    """Watches a streamed reply for a call opening (:func:`find_opening`)."""

    def __init__(self) -> None:
        self.text = ""
        self.opening: Opening | None = None

    def feed(self, delta: str) -> str:
        """Add a delta; return the part of it up to and including an opening, if the
        opening completes here (then :attr:`opening` is set), else the whole delta."""
        if self.opening is not None:
            return ""
        start = max(0, len(self.text) - len(TAG))
        self.text += delta
        bare = _BARE.match(self.text)
        tag = self.text.find(TAG, start)
        if bare is None and tag < 0:
            return delta
        self.opening = find_opening(self.text)
        assert self.opening is not None
        return delta[: max(0, len(self.opening.prefix) - (len(self.text) - len(delta)))]
