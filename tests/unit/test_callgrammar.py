"""Spotting a call as it opens, and the grammar of the rest of it (qwenchat.callgrammar)."""

from __future__ import annotations

import pytest

from qwenchat.callgrammar import OpeningWatch, call_constraint, find_opening

SPEC = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize(
    ("text", "prefix", "tagged"),
    [
        ('{"name": "x"}', '{"name"', False),
        ('  ```json\n{\n  "name": 1', '  ```json\n{\n  "name"', False),
        ("Let me check.\n<tool_call>\n{", "Let me check.\n<tool_call>", True),
    ],
)
def test_openings_are_found(text: str, prefix: str, tagged: bool) -> None:
    opening = find_opening(text)
    assert opening is not None and (opening.prefix, opening.tagged) == (prefix, tagged)


@pytest.mark.parametrize("text", ['Use {"name": 1}', "```python\n{'name'", "{ 'name'", "plain"])
def test_prose_and_other_code_are_not_openings(text: str) -> None:
    assert find_opening(text) is None


def test_the_watch_cuts_the_delta_at_the_opening() -> None:
    watch = OpeningWatch()
    assert watch.feed("```json\n") == "```json\n"
    assert watch.feed('{"na') == '{"na'
    assert watch.feed('me": "get') == 'me"'  # what follows is generated under the grammar
    assert watch.opening is not None and watch.opening.prefix == '```json\n{"name"'
    assert watch.feed("more") == ""
    tagged = OpeningWatch()
    assert tagged.feed("I will <tool_") == "I will <tool_"
    assert tagged.feed("call>\n{") == "call>"


def test_the_grammar_allows_only_the_enabled_tools_and_their_arguments() -> None:
    bare = call_constraint([SPEC], find_opening('{"name"'))  # type: ignore[arg-type]
    assert bare.gbnf.startswith('root ::= space ":" space ( "\\"get_weather\\""')
    assert '"\\"celsius\\"" | "\\"fahrenheit\\""' in bare.gbnf
    fenced = call_constraint([SPEC], find_opening('```json\n{"name"'))  # type: ignore[arg-type]
    assert fenced.gbnf.splitlines()[0].endswith('"}" space "\\n```"')
    tagged = call_constraint([SPEC], find_opening("<tool_call>"))  # type: ignore[arg-type]
    assert tagged.gbnf.splitlines()[0].endswith('"\\n</tool_call>"')
    # Whitespace as llama.cpp's converter has it: newlines and indents, bounded.
    assert 'space ::= | " " | "\\n"{1,2} [ \\t]{0,20}' in bare.gbnf.splitlines()


def test_a_restricted_spec_offers_only_the_given_values_for_that_argument() -> None:
    from llama_cpp import LlamaGrammar

    from qwenchat.callgrammar import restricted

    spec = {
        "name": "who",
        "parameters": {
            "type": "object",
            "properties": {
                "n": {"type": "string", "description": "a name"},
                "k": {"type": "integer"},
            },
        },
    }
    changed = restricted(spec, "n", ["Tomas Berglund", "Tomas"])
    assert spec["parameters"]["properties"]["n"] == {"type": "string", "description": "a name"}
    assert changed["parameters"]["properties"]["n"] == {
        "description": "a name",
        "enum": ["Tomas Berglund", "Tomas"],
    }
    gbnf = call_constraint([changed], find_opening("<tool_call>")).gbnf  # type: ignore[arg-type]
    assert '"\\"Tomas Berglund\\""' in gbnf and "Jane" not in gbnf
    assert LlamaGrammar.from_string(gbnf, verbose=False) is not None
    # Numbers are offered as numbers: the call's JSON keeps the parameter's type.
    numeric = call_constraint([restricted(spec, "k", [7, 12])], find_opening("<tool_call>"))
    [rule] = [line for line in numeric.gbnf.splitlines() if '"7"' in line]
    assert '"12"' in rule and '\\"7' not in rule
    assert LlamaGrammar.from_string(numeric.gbnf, verbose=False) is not None
