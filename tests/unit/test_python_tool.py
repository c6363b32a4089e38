"""The python tool: code in a real sandbox, state kept between calls, safe only at full
strength, refused where no sandbox works; and Chat offering it to the agent loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qwenchat.agent import ApprovalPolicy, run_tool
from qwenchat.chat import Chat
from qwenchat.chatml import ToolMessage
from qwenchat.config import SandboxSettings, Settings
from qwenchat.sandbox import Sandbox, SandboxError
from qwenchat.sandbox.client import NO_OUTPUT
from qwenchat.tools.python import python_tool
from tests.fakes import ScriptedEngine
from tests.sandbox_layers import skip_unless_usable


@pytest.fixture(params=["bubblewrap", "rlimits"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    skip_unless_usable(request.param)
    with Sandbox(request.param, timeout=2.0) as sb:
        yield sb


def test_state_persists_between_calls(sandbox: Sandbox) -> None:
    python = python_tool(sandbox)
    # fractions, not sympy: a cold import of sympy can take longer than this sandbox's 2 s.
    code = "from fractions import Fraction\nx = Fraction(1, 3)"
    assert run_tool(python, {"code": code}).result == NO_OUTPUT
    record = run_tool(python, {"code": "print(x * 3)\nx + 1"})
    assert (record.status, record.result) == ("ok", "1\nFraction(4, 3)")


def test_errors_come_back_as_one_line_after_the_output(sandbox: Sandbox) -> None:
    record = run_tool(python_tool(sandbox), {"code": "print('before')\n1 / 0"})
    assert record.result == "before\nZeroDivisionError: division by zero"


def test_a_timeout_says_the_state_survived(sandbox: Sandbox) -> None:
    record = run_tool(python_tool(sandbox), {"code": "import time\ntime.sleep(30)"})
    assert "timed out after 2 s" in record.result and "state is kept" in record.result


def test_safe_only_at_full_strength(sandbox: Sandbox) -> None:
    assert python_tool(sandbox).safe is (sandbox.layer.strength == "full")


def test_refused_without_a_sandbox_unless_allowed() -> None:
    with pytest.raises(SandboxError, match="python tool is off"):
        python_tool(Sandbox("none"))
    with Sandbox("none", allow_unsandboxed=True) as unsandboxed:
        python = python_tool(unsandboxed)
        assert python.safe is False
        assert run_tool(python, {"code": "print(2 ** 10)"}).result == "1024"


def test_chat_offers_python_to_the_agent_loop() -> None:
    skip_unless_usable("rlimits")
    call = '<tool_call>\n{"name": "python", "arguments": {"code": "print(6 * 7)"}}\n</tool_call>'
    engine = ScriptedEngine([call, "It is 42."])
    settings = Settings(sandbox=SandboxSettings(layer="rlimits"))
    with Chat(settings=settings, engine=engine, python=True, approval=None) as chat:
        reply = chat.send("What is 6 times 7?")
        assert chat.tools is not None and chat.tools.names() == ["python"]
        assert '"name": "python"' in engine.prompts[0]  # offered in the tools block
        tool_messages = [m for m in chat.messages if isinstance(m, ToolMessage)]
        # rlimits is the weaker layer: not safe, and nobody approved, so it was refused.
        assert reply.tool_calls[0].status == "denied"
        assert "did not approve" in tool_messages[0].content
    assert chat.sandbox.pid is None  # closed; it never started


def test_chat_runs_python_when_approved() -> None:
    skip_unless_usable("rlimits")
    call = '<tool_call>\n{"name": "python", "arguments": {"code": "print(6 * 7)"}}\n</tool_call>'
    settings = Settings(sandbox=SandboxSettings(layer="rlimits"))
    engine = ScriptedEngine([call, "It is 42."])
    with Chat(
        settings=settings, engine=engine, python=True, approval=ApprovalPolicy(yes=True)
    ) as chat:
        reply = chat.send("What is 6 times 7?")
        assert reply.tool_calls[0].result == "42" and reply.text == "It is 42."
        pid = chat.sandbox.pid
        assert pid is not None
    assert chat.sandbox.pid is None  # the interpreter is gone with the chat
