"""Files and MCP tools end to end on the real 0.5B model: `ask -f` with a PDF, a second
question about the same file in a new process read from the prefix library, and an MCP
server's tool called by the model in `ask` and in the TUI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.documents import write_pdf

pytestmark = pytest.mark.model

SERVER = Path(__file__).resolve().parents[1] / "mcp_server.py"
NOTES = "\n".join(
    [f"Item {i}: the north warehouse received {i * 7} crates of apples." for i in range(1, 40)]
    + ["The annual inventory audit takes place on 14 March, at the north warehouse."]
)


def ask(env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask", "--json",
         "--temperature", "0", "--max-tokens", "40", *args],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def env(model_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **model_env, "QWENCHAT_CACHE_DIR": str(tmp_path / "cache")}


def test_a_pdf_is_read_and_a_second_question_about_it_is_not(
    env: dict[str, str], tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "inventory.pdf", NOTES.splitlines()[-6:])
    first = ask(env, "-f", str(pdf), "When is the audit?")
    assert "14 March" in first["text"] or "March 14" in first["text"]
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES)
    cold = ask(env, "-f", str(notes), "When is the audit?")["usage"]
    warm = ask(env, "-f", str(notes), "Where is the audit?")["usage"]
    assert cold["prompt_tokens"] > 500
    # Everything up to the question came from the first process's saved state.
    assert warm["prompt_tokens"] - warm["cached_tokens"] < 20


def mcp_config(tmp_path: Path, safe: tuple[str, ...] = ()) -> Path:
    entry = {"command": sys.executable, "args": [str(SERVER)], "timeout": 20, "safe": [*safe]}
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"depot": entry}}))
    return path


def test_the_model_calls_an_mcp_servers_tool_in_ask(env: dict[str, str], tmp_path: Path) -> None:
    reply = ask(
        env, "--mcp-config", str(mcp_config(tmp_path)), "--tool", "shipment_status", "--yes",
        "Where is my parcel? The tracking number is PX-4471.",
    )  # fmt: skip
    [call, *_] = reply["tool_calls"]
    assert call["name"] == "shipment_status" and call["status"] == "ok"
    assert call["arguments"] == {"tracking": "PX-4471"}
    assert "Oslo" in reply["text"] or "Friday" in reply["text"]


@pytest.mark.asyncio
async def test_the_model_calls_an_mcp_servers_tool_in_the_tui(
    test_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwenchat.config import Settings
    from qwenchat.engine.llama import LlamaEngine
    from qwenchat.store import SessionStore
    from tests.tui.conftest import SIZE, make_app, panels, ready, send, wait_for

    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    engine = LlamaEngine(test_model_path, n_ctx=4096)
    settings = Settings.model_validate({"sampling": {"temperature": 0, "max_tokens": 60}})
    config = mcp_config(tmp_path, safe=("shipment_status",))
    with SessionStore(tmp_path / "s.db") as store:
        app = make_app(store, engine=engine, tools=True, settings=settings, mcp_config=config)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)

            def offered() -> bool:
                chat = app.state.chat
                return chat is not None and bool(chat.tools) and "shipment_status" in chat.tools

            await wait_for(pilot, offered, "the MCP server's tools", timeout=60)
            await send(pilot, "Where is my parcel? The tracking number is PX-4471.", wait=False)
            await wait_for(pilot, lambda: app.tracked.replies_ended, "the reply", timeout=240)
            assert "shipment_status" in [p.tool_name for p in panels(app)]
