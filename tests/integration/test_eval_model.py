"""Opt-in tests on the 1.5B evaluation model (`pytest -m eval_model`; needs `.[eval-model]`).

The stronger model answers from a tool's result itself, where the 0.5B test model
needs the loop's fallback; these tests hold qwenchat to that.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenchat.agent import ApprovalPolicy
from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine
from qwenchat.engine.selfcheck import known_answer
from qwenchat.models import EVAL_MODEL, assemble, is_installed
from qwenchat.tools import load_tools

pytestmark = pytest.mark.eval_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(data_dir: Path) -> LlamaEngine:
    if not is_installed(EVAL_MODEL):
        pytest.fail(f"the evaluation model is not installed: {EVAL_MODEL.install_hint()}")
    return LlamaEngine(assemble(EVAL_MODEL, data_dir / "models"), n_ctx=4096)


def test_the_model_answers_from_the_tool_result(engine: LlamaEngine) -> None:
    tools = load_tools([REPO / "tools"]).registry
    chat = Chat(
        settings=Settings(), engine=engine, tools=tools, approval=ApprovalPolicy(), temperature=0
    )
    stream = chat.stream("Convert 10 km to miles.")
    notices = [e for e in stream.events() if type(e).__name__ == "Notice"]
    reply = stream.reply
    assert reply is not None
    assert reply.tool_calls[0].name == "convert_units" and reply.tool_calls[0].status == "ok"
    assert "6.21" in reply.text
    assert notices == []  # answered by the model, not by the repeat fallback


def test_the_known_answers_hold_on_the_evaluation_model(engine: LlamaEngine) -> None:
    verdict = known_answer(engine)
    assert verdict.ok, verdict.detail


def test_a_published_mcp_servers_tool_answers_a_time_question(
    engine: LlamaEngine, tmp_path: Path
) -> None:
    """mcp-server-time from PyPI, over stdio, end to end."""
    import sys

    from qwenchat.mcp.config import McpConfig
    from qwenchat.mcp.tools import McpServers
    from qwenchat.tools import ToolRegistry

    command = str(Path(sys.executable).parent / "mcp-server-time")
    entry = {"command": command, "args": ["--local-timezone", "UTC"], "safe": ["get_current_time"]}
    group = McpServers(McpConfig.model_validate({"mcpServers": {"time": entry}}), tmp_path)
    registry, warnings = ToolRegistry(), []
    group.add_tools(registry, warnings.append)
    try:
        assert warnings == [] and {"get_current_time", "convert_time"} <= set(registry.names())
        chat = Chat(settings=Settings(), engine=engine, tools=registry, temperature=0)
        reply = chat.send("What time is it in Tokyo right now?")
        first = reply.tool_calls[0]
        assert first.name == "get_current_time" and first.status == "ok"
        assert first.arguments == {"timezone": "Asia/Tokyo"}
        hour_minute = json.loads(first.result)["datetime"][11:16]
        assert hour_minute in reply.text
    finally:
        group.close()
