"""`qwenchat ask` run in-process (typer's CliRunner) over a scripted engine: the command's
own logic, with no model and no subprocess. The engine comes through the click context's
``obj`` (:data:`qwenchat.engine.load.EngineFactory`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qwenchat.cli.app import app
from qwenchat.errors import InputError
from tests.fakes import ScriptedEngine


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QWENCHAT_CACHE_DIR", str(tmp_path / "cache"))


def run(engine: ScriptedEngine, *args: str, stdin: str = "") -> Any:
    def factory(_model: object, _settings: object, _warn: object) -> ScriptedEngine:
        return engine

    return CliRunner().invoke(app, ["ask", *args], input=stdin, obj=factory)


def test_ask_writes_the_reply_and_sends_the_question() -> None:
    engine = ScriptedEngine(["Paris."])
    result = run(engine, "What is the capital of France?")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Paris.\n"
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in engine.prompts[0]


def test_ask_json_carries_the_text_usage_and_tool_calls() -> None:
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    engine = ScriptedEngine([call, "It is 42."])
    result = run(engine, "--json", "--tool", "calculator", "What is 6 times 7?")
    assert result.exit_code == 0, result.output
    reply = json.loads(result.stdout)
    assert reply["text"] == "It is 42."
    assert [(c["name"], c["result"]) for c in reply["tool_calls"]] == [("calculator", "42")]
    assert reply["usage"]["completion_tokens"] > 0


def test_ask_puts_piped_input_and_files_before_the_question(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("The launch is on May 3.")
    engine = ScriptedEngine(["May 3."])
    result = run(engine, "-f", str(notes), "When?", stdin="piped log\n")
    assert result.exit_code == 0, result.output
    prompt = engine.prompts[0]
    assert (
        prompt.index("The launch is on May 3.") < prompt.index("piped log") < prompt.index("When?")
    )


def test_bad_input_is_an_input_error_before_the_engine_is_asked() -> None:
    engine = ScriptedEngine([])
    result = run(engine, "--max-tokens", "0", "hi")
    assert isinstance(result.exception, InputError) and "--max-tokens 0" in str(result.exception)
    assert engine.prompts == []
    empty = run(engine)
    assert isinstance(empty.exception, InputError) and "empty prompt" in str(empty.exception)
