"""qwenchat.toolcall: parsing Qwen2.5 tool calls out of streamed replies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qwenchat.chatml import ToolCall
from qwenchat.toolcall import (
    CallEvent,
    Event,
    ParsedCall,
    TextEvent,
    ToolCallParser,
    parse_reply,
)

WEATHER = "get_current_temperature"
KNOWN = {WEATHER, "get_time"}
# Exactly what the 0.5B test model answered, tags and all missing.
BARE_05B = (
    '{"name": "get_current_temperature", "arguments": {"location": "Paris", "unit": "celsius"}}'
)
PARIS = {"location": "Paris", "unit": "celsius"}
EXPECTED = 'expected {"name": <function-name>, "arguments": <args-json-object>}'


def block(inner: str) -> str:
    return f"<tool_call>{inner}</tool_call>"


def call(
    name: str | None, arguments: dict[str, Any] | None, raw: str, error: str | None = None
) -> ParsedCall:
    return ParsedCall(name=name, arguments=arguments, raw=raw, error=error)


def feed_all(parser: ToolCallParser, deltas: Iterable[str]) -> list[Event]:
    events = [event for delta in deltas for event in parser.feed(delta)]
    return events + parser.finish()


def merged(events: Sequence[Event]) -> list[Event]:
    """Events with adjacent text joined: what chunking may legitimately change."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, TextEvent) and out and isinstance(out[-1], TextEvent):
            out[-1] = TextEvent(out[-1].text + event.text)
        else:
            out.append(event)
    return out


def split(text: str, cuts: Iterable[int]) -> list[str]:
    points = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in pairwise(points)]


# --- tagged blocks ---------------------------------------------------------------------------


def test_one_block() -> None:
    inner = '\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n'
    assert parse_reply(block(inner)) == ("", [call("get_time", {"tz": "UTC"}, inner)])


def test_several_blocks_with_text_before() -> None:
    first = '\n{"name": "get_time", "arguments": {}}\n'
    second = '\n{"name": "get_current_temperature", "arguments": {"location": "Oslo"}}\n'
    reply = f"Let me check both.\n{block(first)}\n{block(second)}"
    assert parse_reply(reply) == (
        "Let me check both.\n",
        [call("get_time", {}, first), call(WEATHER, {"location": "Oslo"}, second)],
    )


def test_events_come_in_order() -> None:
    parser = ToolCallParser()
    events = feed_all(parser, ["Hi ", block('{"name": "a"}'), " and ", block('{"name": "b"}')])
    assert events == [
        TextEvent("Hi "),
        CallEvent(call("a", {}, '{"name": "a"}')),
        TextEvent(" and "),
        CallEvent(call("b", {}, '{"name": "b"}')),
    ]


def test_json_spread_over_lines() -> None:
    inner = (
        '\n{\n  "name": "get_time",\n  "arguments": {\n    "tz": "UTC",\n    "format": 24\n  }\n}\n'
    )
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC", "format": 24}, inner)]


def test_arguments_as_json_string_are_decoded() -> None:
    inner = '{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_trailing_commas_are_repaired() -> None:
    inner = '{"name": "get_time", "arguments": {"tz": "UTC", "days": [1, 2,],},}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC", "days": [1, 2]}, inner)]


def test_single_quotes_are_repaired() -> None:
    inner = "{'name': 'get_time', 'arguments': {'tz': 'UTC'}}"
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_python_literals_are_repaired() -> None:
    inner = '{"name": "search", "arguments": {"exact": True, "fuzzy": False, "limit": None}}'
    arguments = {"exact": True, "fuzzy": False, "limit": None}
    assert parse_reply(block(inner))[1] == [call("search", arguments, inner)]


def test_unquoted_keys_are_repaired() -> None:
    inner = '{name: "get_time", arguments: {tz: "UTC"}}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_parameters_is_a_synonym_of_arguments() -> None:
    inner = '{"name": "get_time", "parameters": {"tz": "UTC"}}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


@pytest.mark.parametrize(
    "inner", ['{"name": "get_time"}', '{"name": "get_time", "arguments": null}']
)
def test_missing_arguments_are_empty(inner: str) -> None:
    assert parse_reply(block(inner))[1] == [call("get_time", {}, inner)]


def test_openai_function_wrapper_is_unwrapped() -> None:
    inner = '{"type": "function", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_code_fence_inside_a_block() -> None:
    inner = '\n```json\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n```\n'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_missing_closing_tag_at_the_end() -> None:
    reply = 'Checking.\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n'
    assert parse_reply(reply) == (
        "Checking.\n",
        [call("get_time", {"tz": "UTC"}, '\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n')],
    )


def test_truncated_closing_tag_at_the_end_is_dropped() -> None:
    reply = '<tool_call>\n{"name": "get_time"}\n</tool_c'
    assert parse_reply(reply) == ("", [call("get_time", {}, '\n{"name": "get_time"}\n')])


def test_new_block_closes_an_unclosed_one() -> None:
    reply = '<tool_call>\n{"name": "a"}\n<tool_call>\n{"name": "b"}\n</tool_call>'
    assert parse_reply(reply) == (
        "",
        [call("a", {}, '\n{"name": "a"}\n'), call("b", {}, '\n{"name": "b"}\n')],
    )


def test_text_after_a_tool_call() -> None:
    reply = block('{"name": "get_time"}') + "\n\nThat is all."
    assert parse_reply(reply) == (
        "\n\nThat is all.",
        [call("get_time", {}, '{"name": "get_time"}')],
    )


def test_whitespace_between_and_after_calls_is_dropped() -> None:
    reply = "Sure.\n" + block('{"name": "a"}') + "\n \n" + block('{"name": "b"}') + "\n\n"
    assert parse_reply(reply) == (
        "Sure.\n",
        [call("a", {}, '{"name": "a"}'), call("b", {}, '{"name": "b"}')],
    )


def test_stray_closing_tag_is_not_text() -> None:
    assert parse_reply("done</tool_call> now") == ("done now", [])


# --- holding back partial tags ---------------------------------------------------------------


def test_partial_tag_that_never_completes_is_text_at_finish() -> None:
    parser = ToolCallParser()
    assert parser.feed("see <tool_ca") == [TextEvent("see ")]
    assert parser.finish() == [TextEvent("<tool_ca")]


def test_angle_bracket_in_text_is_emitted_at_once() -> None:
    parser = ToolCallParser()
    assert parser.feed("a <b") == [TextEvent("a <b")]
    assert parser.feed(" 1 < 2 and x<") == [TextEvent(" 1 < 2 and x")]
    assert parser.feed("y") == [TextEvent("<y")]
    assert parser.finish() == []


def test_tag_split_across_deltas() -> None:
    parser = ToolCallParser()
    deltas = ["a <", "to", "ol_c", "all>", '{"name": ', '"get_time"}<', "/tool", "_call", "> b"]
    assert merged(feed_all(parser, deltas)) == [
        TextEvent("a "),
        CallEvent(call("get_time", {}, '{"name": "get_time"}')),
        TextEvent(" b"),
    ]


def test_whitespace_after_a_call_waits_for_what_follows() -> None:
    parser = ToolCallParser()
    assert parser.feed(block('{"name": "a"}') + "\n") == [CallEvent(call("a", {}, '{"name": "a"}'))]
    assert parser.feed("\n") == []
    assert parser.feed("Done") == [TextEvent("\n\nDone")]


def test_parser_is_reset_by_finish() -> None:
    parser = ToolCallParser(KNOWN)
    assert feed_all(parser, ["<tool_call>", '{"name": "a"}']) == [
        CallEvent(call("a", {}, '{"name": "a"}'))
    ]
    assert feed_all(parser, ["plain"]) == [TextEvent("plain")]


# --- bare JSON fallback ----------------------------------------------------------------------


def test_bare_json_call_from_the_05b_model() -> None:
    assert parse_reply(BARE_05B, KNOWN) == ("", [call(WEATHER, PARIS, BARE_05B)])


def test_bare_json_is_held_back_while_streaming() -> None:
    parser = ToolCallParser(KNOWN)
    held = [parser.feed(BARE_05B[i : i + 3]) for i in range(0, len(BARE_05B), 3)]
    assert held == [[]] * len(held)
    assert parser.finish() == [CallEvent(call(WEATHER, PARIS, BARE_05B))]


@pytest.mark.parametrize(
    "reply", [f"```json\n{BARE_05B}\n```", f"\n```\n{BARE_05B}\n```\n", f"```JSON\n  {BARE_05B}"]
)
def test_bare_json_call_in_a_code_fence(reply: str) -> None:
    assert parse_reply(reply, KNOWN) == ("", [call(WEATHER, PARIS, BARE_05B)])


def test_bare_json_with_surrounding_whitespace() -> None:
    assert parse_reply(f"\n  {BARE_05B}\n", KNOWN) == ("", [call(WEATHER, PARIS, BARE_05B)])


def test_bare_json_list_of_calls() -> None:
    first = '{"name": "get_time", "arguments": {"tz": "UTC"}}'
    second = '{"name": "get_current_temperature", "arguments": {"location": "Paris"}}'
    reply = f"[{first}, {second}]"
    calls = [call("get_time", {"tz": "UTC"}, first), call(WEATHER, {"location": "Paris"}, second)]
    assert parse_reply(reply, KNOWN) == ("", calls)


def test_bare_json_repaired() -> None:
    reply = "{'name': 'get_time', 'arguments': {'utc': True,},}"
    assert parse_reply(reply, KNOWN) == ("", [call("get_time", {"utc": True}, reply)])


def test_bare_json_with_unknown_tool_is_text() -> None:
    reply = '{"name": "launch_rockets", "arguments": {}}'
    assert parse_reply(reply, KNOWN) == (reply, [])


def test_bare_json_list_with_an_unknown_tool_is_text() -> None:
    reply = '[{"name": "get_time"}, {"name": "launch_rockets"}]'
    assert parse_reply(reply, KNOWN) == (reply, [])


def test_bare_json_disabled_is_text() -> None:
    assert parse_reply(BARE_05B, KNOWN, bare_json=False) == (BARE_05B, [])


def test_bare_json_without_known_tools_is_text_and_not_held() -> None:
    parser = ToolCallParser()
    assert parser.feed('{"name": "get_time"}') == [TextEvent('{"name": "get_time"}')]
    assert parser.finish() == []


@pytest.mark.parametrize(
    "reply", ['{"a": 1}', "[1, 2, 3]", "[]", '{"name": 3}', '```json\n["x"]\n```']
)
def test_ordinary_json_data_is_text(reply: str) -> None:
    assert parse_reply(reply, KNOWN) == (reply, [])


def test_text_after_the_json_releases_it_at_once() -> None:
    parser = ToolCallParser(KNOWN)
    assert parser.feed('{"name": "get_time"}') == []
    assert parser.feed(" is how") == [TextEvent('{"name": "get_time"} is how')]
    assert parser.feed(" you call it.") == [TextEvent(" you call it.")]
    assert parser.finish() == []


def test_other_fence_language_releases_at_once() -> None:
    parser = ToolCallParser(KNOWN)
    assert parser.feed("```") == []
    assert parser.feed("py") == [TextEvent("```py")]


def test_text_after_a_bare_call_with_arguments_is_dropped() -> None:
    reply = f"```json\n{BARE_05B}\n```\nThat call gets the temperature."
    text, calls = parse_reply(reply, KNOWN)
    assert text == "" and [c.name for c in calls] == ["get_current_temperature"]


def test_bare_call_followed_by_an_invented_result() -> None:
    # What the 0.5B model wrote, seen here, after the calculator's result came back.
    reply = '{"name": "calculator", "arguments": {"expression": "2 * 3"}}\n{"response": "6"}'
    parser = ToolCallParser({"calculator"})
    events = parser.feed(reply[:62]) + parser.feed(reply[62:]) + parser.finish()
    assert events == [CallEvent(ParsedCall("calculator", {"expression": "2 * 3"}, reply[:60]))]


def test_ordinary_reply_is_not_held() -> None:
    parser = ToolCallParser(KNOWN)
    assert parser.feed("  ") == []
    assert parser.feed("Hello") == [TextEvent("  Hello")]


def test_released_bare_text_still_finds_tagged_blocks() -> None:
    reply = '{"note": 1} then ' + block('{"name": "get_time"}')
    assert parse_reply(reply, KNOWN) == (
        '{"note": 1} then ',
        [call("get_time", {}, '{"name": "get_time"}')],
    )


def test_known_bare_call_with_bad_arguments_is_an_error_call() -> None:
    reply = '{"name": "get_time", "arguments": [1]}'
    assert parse_reply(reply, KNOWN) == (
        "",
        [call("get_time", None, reply, 'tool call "arguments" must be a JSON object')],
    )


# --- garbage ---------------------------------------------------------------------------------


def test_not_json_is_an_error_call() -> None:
    error = "could not parse the tool call as JSON: not json at all"
    assert parse_reply(block("not json at all")) == (
        "",
        [call(None, None, "not json at all", error)],
    )


def test_missing_name_is_an_error_call() -> None:
    assert parse_reply(block('{"arguments": {}}'))[1] == [
        call(None, None, '{"arguments": {}}', f'tool call has no "name": {EXPECTED}')
    ]


def test_non_string_name_is_an_error_call() -> None:
    assert parse_reply(block('{"name": 7}'))[1] == [
        call(None, None, '{"name": 7}', 'tool call "name" must be a string')
    ]


@pytest.mark.parametrize("inner", ["", "\n  \n"])
def test_empty_block_is_an_error_call(inner: str) -> None:
    assert parse_reply(block(inner))[1] == [call(None, None, inner, f"empty tool call: {EXPECTED}")]


def test_arguments_that_are_not_an_object() -> None:
    inner = '{"name": "get_time", "arguments": "UTC please"}'
    assert parse_reply(block(inner))[1] == [
        call("get_time", None, inner, 'tool call "arguments" must be a JSON object')
    ]


def test_unclosed_braces_are_repaired() -> None:
    inner = '{"name": "get_time", "arguments": {"tz": "UTC"'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


def test_extra_closing_braces_are_repaired() -> None:
    inner = '{"name": "get_time", "arguments": {"tz": "UTC"}}}}'
    assert parse_reply(block(inner))[1] == [call("get_time", {"tz": "UTC"}, inner)]


@pytest.mark.parametrize("inner", ["}}}{{{", "{{{{", "[" * 50_000, "{" * 2_000, '"unterminated'])
def test_hopeless_blocks_are_error_calls(inner: str) -> None:
    text, calls = parse_reply(block(inner))
    assert text == ""
    assert len(calls) == 1
    assert calls[0].raw == inner
    assert calls[0].name is None and calls[0].arguments is None
    assert calls[0].error is not None


def test_long_garbage_is_excerpted_in_the_error() -> None:
    inner = "nonsense " * 40
    [parsed] = parse_reply(block(inner))[1]
    assert (
        parsed.error == "could not parse the tool call as JSON: " + ("nonsense " * 9)[:77] + "..."
    )


# --- ParsedCall ------------------------------------------------------------------------------


def test_to_tool_call() -> None:
    assert call("get_time", {"tz": "UTC"}, "").to_tool_call() == ToolCall(
        name="get_time", arguments={"tz": "UTC"}
    )


def test_an_invalid_call_goes_into_the_conversation_as_it_was_written() -> None:
    broken = call(None, None, '{"nme": 1}', 'tool call has no "name"').to_tool_call()
    assert broken == ToolCall(name="?", arguments='{"nme": 1}')


# --- properties ------------------------------------------------------------------------------

TAG_BITS = ["<", "<tool", "<tool_call>", "</tool_call>", "</tool_c", "{", "}", "[", '"', "`", "```"]
TAG_BITS += ["\n", " "]
names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
arg_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(), kids, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(st.text(max_size=8), arg_values, max_size=4)
texts = st.lists(st.sampled_from(TAG_BITS) | st.text(max_size=6), max_size=6).map("".join)


def _no_tags(text: str) -> bool:
    return "<tool_call>" not in text and "</tool_call>" not in text


@st.composite
def tool_call_blocks(draw: st.DrawFn) -> tuple[str, ParsedCall]:
    """A well-formed block in one of the layouts models use, and the call it holds."""
    name, args = draw(names), draw(arguments)
    assume(_no_tags(json.dumps(args, ensure_ascii=False)))
    payload = {"name": name, "arguments": json.dumps(args) if draw(st.booleans()) else args}
    inner = draw(st.sampled_from(["\n{}\n", "{}", "\n{}"])).format(
        json.dumps(
            payload, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2]))
        )
    )
    return inner, call(name, args, inner)


@st.composite
def tagged_replies(draw: st.DrawFn) -> tuple[str, str, list[ParsedCall]]:
    """Text and 0-3 blocks, the last maybe unclosed: the reply, its visible text, its calls."""
    blocks = draw(st.lists(tool_call_blocks(), max_size=3))
    gaps = draw(
        st.lists(texts.filter(_no_tags), min_size=len(blocks) + 1, max_size=len(blocks) + 1)
    )
    unclosed = bool(blocks) and draw(st.booleans())
    if unclosed:
        gaps[-1] = ""  # whatever follows an unclosed block belongs to it
    parts = [gaps[0]]
    for i, (inner, _) in enumerate(blocks):
        closing = "" if unclosed and i == len(blocks) - 1 else "</tool_call>"
        parts += ["<tool_call>", inner, closing, gaps[i + 1]]
    visible = gaps[0] + "".join(gap for gap in gaps[1:] if not gap.isspace())
    return "".join(parts), visible, [parsed for _, parsed in blocks]


@st.composite
def bare_replies(draw: st.DrawFn) -> tuple[str, str, list[ParsedCall]]:
    """A reply that is nothing but one call object or a list of them, maybe fenced."""
    calls = [
        (draw(st.sampled_from(sorted(KNOWN))), draw(arguments))
        for _ in range(draw(st.integers(1, 3)))
    ]
    objects = [{"name": name, "arguments": args} for name, args in calls]
    as_list = len(objects) > 1 or draw(st.booleans())
    body = json.dumps(objects if as_list else objects[0], indent=draw(st.sampled_from([None, 2])))
    assume(_no_tags(body))
    fence = draw(
        st.sampled_from([("", ""), ("```json\n", "\n```"), ("```\n", "\n```\n"), ("```json\n", "")])
    )
    space = draw(st.sampled_from(["", " ", "\n"]))
    raws = [json.dumps(o, ensure_ascii=False) for o in objects] if as_list else [body]
    reply = space + fence[0] + body + fence[1] + space
    return reply, "", [call(name, args, raw) for (name, args), raw in zip(calls, raws, strict=True)]


representative_replies = tagged_replies() | bare_replies()


@settings(max_examples=150, deadline=None)
@given(case=representative_replies, bare_json=st.booleans(), data=st.data())
def test_any_chunking_gives_the_same_events(
    case: tuple[str, str, list[ParsedCall]], bare_json: bool, data: st.DataObject
) -> None:
    reply = case[0]
    whole = merged(feed_all(ToolCallParser(KNOWN, bare_json=bare_json), [reply]))
    cuts = data.draw(st.lists(st.integers(0, len(reply)), max_size=25))
    chunked = merged(feed_all(ToolCallParser(KNOWN, bare_json=bare_json), split(reply, cuts)))
    assert chunked == whole
    # One character at a time: every tag and bracket arrives in pieces.
    singles = merged(feed_all(ToolCallParser(KNOWN, bare_json=bare_json), reply))
    assert singles == whole


@settings(max_examples=100, deadline=None)
@given(case=tagged_replies())
def test_tagged_replies_give_their_text_and_calls(case: tuple[str, str, list[ParsedCall]]) -> None:
    reply, visible, calls = case
    assume(not reply.lstrip().startswith(("{", "[", "`")))  # those would be bare JSON candidates
    assert parse_reply(reply, KNOWN) == (visible, calls)


@settings(max_examples=100, deadline=None)
@given(case=bare_replies())
def test_bare_replies_give_their_calls(case: tuple[str, str, list[ParsedCall]]) -> None:
    reply, visible, calls = case
    assert parse_reply(reply, KNOWN) == (visible, calls)
    assert parse_reply(reply, KNOWN, bare_json=False) == (reply, [])


random_texts = st.lists(st.sampled_from(TAG_BITS) | st.text(max_size=10), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=random_texts | st.text(), known=st.sampled_from([(), tuple(KNOWN)]), data=st.data())
def test_random_text_never_raises(text: str, known: tuple[str, ...], data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=10))
    events = feed_all(ToolCallParser(known), split(text, cuts))
    assert merged(events) == merged(feed_all(ToolCallParser(known), [text]))
    visible = "".join(e.text for e in events if isinstance(e, TextEvent))
    if "<" not in text and "{" not in text:
        assert all(isinstance(e, TextEvent) for e in events)
        assert visible == text
