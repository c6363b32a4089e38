"""Structured output, constrained calls and `tools eval` on the real 0.5B test model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from qwenchat.agent import AgentOptions, ApprovalPolicy
from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine
from qwenchat.tools import load_tools

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]
TOOLSETS = REPO / "bench" / "toolsets"
QWENCHAT = [sys.executable, "-c", "from qwenchat.cli import main; main()"]


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> LlamaEngine:
    return LlamaEngine(test_model_path, n_ctx=4096)


def qwenchat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QWENCHAT, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=600
    )


class City(BaseModel):
    name: str
    country: str
    population: int
    landmarks: list[str]


def test_a_pydantic_schema_gives_a_valid_model(engine: LlamaEngine) -> None:
    chat = Chat(settings=Settings(), engine=engine, temperature=0, max_tokens=200)
    city = chat.send("Describe Paris.", schema=City)
    assert isinstance(city, City)  # parsed and validated, whatever the model knows
    assert city.name


def test_ask_schema_prints_json_that_follows_it(model_env: dict[str, str]) -> None:
    result = qwenchat(
        "ask",
        "--temperature",
        "0",
        "--json",
        "--schema",
        "name, age int, tags list",
        "Invent a fantasy character.",
        env=model_env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert set(data) == {"name", "age", "tags"}
    assert isinstance(data["age"], int) and isinstance(data["tags"], list)


def test_ask_a_bad_schema_is_one_line_and_exit_2(model_env: dict[str, str]) -> None:
    result = qwenchat("ask", "--schema", "age integer", "hi", env=model_env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown type 'integer'" in result.stderr


def test_calls_are_valid_under_the_grammar(engine: LlamaEngine) -> None:
    # Several tools at once; the call that opens is continued under the call grammar,
    # so it names a real tool with arguments that pass its schema.
    tools = load_tools([TOOLSETS]).registry
    for question in ("Is flight LX 318 on time?", "What is the share price of ORBX?"):
        chat = Chat(
            settings=Settings(),
            engine=engine,
            tools=tools,
            approval=ApprovalPolicy(yes=True),
            temperature=0,
            max_tokens=256,
            # The grammar alone: the example guard would refuse "NVTK", its docstring's.
            agent=AgentOptions(constrained_calls=True, example_guard=False),
        )
        reply = chat.send(question)
        assert reply.tool_calls, reply.text
        assert reply.tool_calls[0].status == "ok", reply.tool_calls[0]
        assert reply.tool_calls[0].name in tools.names()
        assert "<tool_call>" not in reply.text and not reply.text.lstrip().startswith("{")


def test_the_call_grammar_takes_a_call_laid_out_over_lines(engine: LlamaEngine) -> None:
    """Each token of a call as these models lay it out (one key per line, indented) is
    one the grammar allows: refusing '",\\n' once sent greedy decoding into digits for
    ever ("QX 1000000...")."""
    from qwenchat.callgrammar import call_constraint, find_opening

    specs = load_tools([TOOLSETS]).registry.specs()
    call = '{\n  "name": "flight_status",\n  "arguments": {\n    "flight": "QX 100"\n  }\n}\n'
    opening = find_opening(call)
    assert opening is not None
    assert_allows(engine, call_constraint(specs, opening).gbnf, call[len(opening.prefix) :])


def test_a_call_the_loop_makes_is_written_from_its_name_on(engine: LlamaEngine) -> None:
    """After the opening the loop writes for a described call, the grammar takes the
    call as the model writes it (a grammar that wanted a second '{"name"' made the 1.5B
    model's described calls unparsable)."""
    from qwenchat.callgrammar import MADE_OPENING, call_constraint

    specs = load_tools([TOOLSETS]).registry.specs(["get_weather"])
    call = '{"name": "get_weather", "arguments": {"city": "Osaka", "unit": "fahrenheit"}}\n'
    assert_allows(engine, call_constraint(specs, MADE_OPENING).gbnf, call + "</tool_call>")


def assert_allows(engine: LlamaEngine, gbnf: str, text: str) -> None:
    """Each token of ``text``, as the model's first choice, is one the grammar allows
    without a check of the whole vocabulary."""
    import numpy as np

    from qwenchat.engine.grammar_sampler import TopFirst

    grammar = TopFirst(engine._llm._model.vocab, gbnf, k=1)
    ids = engine._llm.tokenize(text.encode(), add_bos=False, special=False)
    seen = [0]
    for token in ids:
        logits = np.zeros(engine._llm.n_vocab(), dtype=np.single)
        logits[token] = 1.0  # the model's first choice
        assert np.isfinite(grammar(np.array(seen), logits)[token]), engine._llm.detokenize([token])
        seen.append(token)
    assert grammar.full_checks == 0


def test_tools_eval_reports_its_rates(model_env: dict[str, str], tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    lines = (TOOLSETS / "fictional.jsonl").read_text().splitlines()[:2]
    cases.write_text("\n".join(lines) + "\n")
    result = qwenchat(
        "tools", "eval", str(cases), "--tools-dir", str(TOOLSETS), "--json", env=model_env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cases"] == 2 and len(report["results"]) == 2
    assert {"right_call", "valid_arguments", "answered", "fallback"} <= set(report)
    assert all(r["expected_tool"] == "get_weather" for r in report["results"])


def test_top_first_grammar_samples_what_the_full_grammar_check_samples(
    engine: LlamaEngine,
) -> None:
    """Checking the likeliest token first is exact when greedy: the same tokens as
    llama-cpp-python's grammar=, which checks the whole vocabulary every token."""
    import llama_cpp

    from qwenchat.chatml import UserMessage, render_segments
    from qwenchat.config import Sampling
    from qwenchat.engine.grammar_sampler import TopFirst
    from qwenchat.schema import Schema

    schema = Schema.parse("name, age int, alive bool, tags list")
    prompt = render_segments([UserMessage(content="Invent a fantasy character as JSON.")])
    ids = engine.tokenize(prompt)
    llm = engine._llm

    def greedy(penalty: float, **kwargs: object) -> list[int]:
        out: list[int] = []
        for token in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=penalty, **kwargs):
            if token in engine._eog or len(out) >= 120:
                break
            out.append(token)
        return out

    for penalty in (1.0, 1.3):  # the chain applies the repeat penalty after the processor
        full = greedy(penalty, grammar=llama_cpp.LlamaGrammar.from_string(schema.constraint.gbnf))
        top = TopFirst(llm._model.vocab, schema.constraint.gbnf, k=1, penalty=penalty)
        assert greedy(penalty, logits_processor=[top]) == full
        assert top.full_checks > 0  # the model's own first choice was refused somewhere
        schema.load(llm.detokenize(full).decode())
    # Sampling at temperature 1 stays within the grammar too.
    chat = Chat(settings=Settings(sampling=Sampling(seed=7)), engine=engine, temperature=1.0)
    for _ in range(3):
        reply = chat.send("Invent another.", schema=schema)
        assert isinstance(reply.data, dict) and set(reply.data) == {"name", "age", "alive", "tags"}


def test_the_prose_opening_keeps_a_reply_from_starting_as_json(engine: LlamaEngine) -> None:
    from qwenchat.callgrammar import PROSE
    from qwenchat.chatml import UserMessage, render_segments
    from qwenchat.config import Sampling

    prompt = render_segments([UserMessage(content='Reply with only this JSON: {"ok": true}')])
    greedy = Sampling(temperature=0.0, max_tokens=40)
    free = engine.generate(prompt, greedy)
    assert "".join(free).lstrip()[:1] in ("{", "`")  # what the model writes on its own
    held = "".join(engine.generate(prompt, greedy, constraint=PROSE))
    assert held and held[0] not in "{[`< \n"
