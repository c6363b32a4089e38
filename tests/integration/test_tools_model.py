"""Tool calling end to end on the real 0.5B test model, in the Python API and in `ask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenchat.agent import AgentOptions, ApprovalPolicy
from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine
from qwenchat.tools import ToolRegistry, tool_from_function
from qwenchat.tools.builtin import builtin_tools

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> LlamaEngine:
    return LlamaEngine(test_model_path, n_ctx=4096)


def test_large_product_comes_from_the_calculator(engine: LlamaEngine) -> None:
    chat = Chat(
        settings=Settings(), engine=engine, tools=ToolRegistry(builtin_tools()), temperature=0
    )
    reply = chat.send("What is 123456789 times 987654321?")
    assert "121932631112635269" in reply.text
    first = reply.tool_calls[0]
    assert (first.name, first.status, first.result) == ("calculator", "ok", "121932631112635269")
    # The model repeats its call (its habit, sometimes with the result as the expression);
    # the guard never runs the same call twice, and the turn ends well within its rounds.
    ran = [(c.name, json.dumps(c.arguments)) for c in reply.tool_calls if c.status == "ok"]
    assert "repeated" in {c.status for c in reply.tool_calls[1:]}
    assert len(ran) == len(set(ran)) and reply.rounds < AgentOptions().max_rounds


def get_stock_price(ticker: str) -> str:
    """Get the current price of a stock.

    Args:
        ticker: the stock's ticker symbol, e.g. AAPL
    """
    raise ConnectionError("the stock exchange is closed")


def test_a_tool_that_raises_does_not_end_the_session(engine: LlamaEngine) -> None:
    tools = ToolRegistry([tool_from_function(get_stock_price)])
    chat = Chat(
        settings=Settings(),
        engine=engine,
        tools=tools,
        approval=ApprovalPolicy(yes=True),
        temperature=0,
        max_tokens=80,
    )
    reply = chat.send("What is the stock price of AAPL? Use the tool.")
    assert reply.tool_calls and reply.tool_calls[0].status == "error"
    assert reply.tool_calls[0].result == "Error: ConnectionError: the stock exchange is closed"
    assert reply.finish_reason in ("stop", "length")
    after = chat.send("Never mind. Say hello.")
    assert after.text.strip() and after.finish_reason in ("stop", "length")


def test_ask_with_example_tools_json(data_dir: Path, test_model_path: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(data_dir),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from qwenchat.cli import main; main()",
            "ask",
            "--tools",
            "--tools-dir",
            str(REPO / "tools"),
            "--temperature",
            "0",
            "--json",
            "Convert 5 kilograms to pounds.",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    first = out["tool_calls"][0]
    assert first["name"] == "convert_units" and first["status"] == "ok"
    assert first["arguments"] == {"value": 5.0, "from_unit": "kg", "to_unit": "lb"}
    assert "11.02" in out["text"]
    # Tool progress goes to stderr only on a terminal; notices (here: the 0.5B model
    # repeated its call, so the result became the answer) always do.
    assert "→" not in result.stderr and "←" not in result.stderr
    assert all(line.startswith("qwenchat: ") for line in result.stderr.splitlines())
