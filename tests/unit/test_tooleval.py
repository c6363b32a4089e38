"""Scoring tool questions (qwenchat.tooleval): calls, argument values, real answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.agent import ToolCallRecord
from qwenchat.errors import InputError
from qwenchat.tooleval import EvalCase, contains, is_sentence, judge, load_cases

RESULT = '{"city": "Reykjavik", "temperature": 3, "condition": "light rain"}'
CASE = EvalCase(
    prompt="Weather in Reykjavik?",
    tool="get_weather",
    arguments={"city": "reykjavik"},
    answer_contains=["{result.temperature}", "{result.condition}"],
)


def record(arguments: dict, status: str = "ok", name: str = "get_weather") -> ToolCallRecord:
    return ToolCallRecord(id="c1", name=name, arguments=arguments, status=status, result=RESULT)


def test_a_sentence_with_the_values_answers() -> None:
    text = "It is 3 degrees with light rain in Reykjavik."
    result = judge(CASE, text, [record({"city": "Reykjavik"})], fallback=False)
    assert result.right_call and result.valid_arguments and result.answered


@pytest.mark.parametrize(
    "text",
    [
        RESULT,  # raw JSON
        "<tool_response>It is 3 degrees, light rain</tool_response>",
        "It is 13 degrees with light rain.",  # 3 is not in 13
        "It is 3 degrees.",  # the condition is missing
    ],
)
def test_json_markup_or_missing_values_do_not_answer(text: str) -> None:
    assert not judge(CASE, text, [record({"city": "Reykjavik"})], fallback=False).answered


def test_the_fallback_and_wrong_arguments_do_not_answer() -> None:
    text = "It is 3 degrees with light rain."
    assert not judge(CASE, text, [record({"city": "Reykjavik"})], fallback=True).answered
    wrong = judge(CASE, text, [record({"city": "Lima"})], fallback=False)
    assert wrong.valid_arguments and not wrong.right_call and not wrong.answered
    invented = judge(CASE, text, [record({}, "unknown", "get_forecast")], fallback=False)
    assert not invented.valid_arguments and invented.calls == ["get_forecast"]


def test_numbers_match_with_separators_and_rounding() -> None:
    assert contains("about 4,123,456 people", "4123456")
    assert contains("the rate is 0.81", "0.8125")
    assert not contains("the rate is 0.9", "0.8125")
    assert contains("Gate B12", "b12")
    assert is_sentence("Gate B12 is where it leaves.") and not is_sentence("B12")


def test_a_case_needing_no_tool_is_right_without_calls() -> None:
    case = EvalCase(prompt="Capital of France?", answer_contains=["Paris"])
    assert judge(case, "The capital is Paris.", [], fallback=False).answered
    assert not judge(case, "The capital is Paris.", [record({})], fallback=False).right_call


def test_a_bad_line_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b", "tools": "x"}\n')
    with pytest.raises(InputError, match=r"cases.jsonl:2: tools: Extra inputs"):
        load_cases(path)
    path.write_text("\n")
    with pytest.raises(InputError, match="has no cases"):
        load_cases(path)
