"""Resuming a session in a new process from the KV state saved on disk (real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenchat.chatml import Segment, SystemMessage, UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.kvcache import KVCache
from qwenchat.engine.llama import LlamaEngine
from qwenchat.store import SessionStore
from qwenchat.tools import load_tools
from tests.unit.test_cli import run_cli

pytestmark = pytest.mark.model


def ask(env: dict[str, str], model: Path, prompt: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask", "-m", str(model),
         "--session", "log", "--temperature", "0", "--max-tokens", "12", "--json", prompt],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_new_process_resumes_from_the_saved_state(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with SessionStore(data / "sessions.db") as store:
        session = store.create_session(name="log")
        for i in range(6):
            store.add_message(session.id, {"role": "user", "content": f"Ship {i} came in."})
            store.add_message(session.id, {"role": "assistant", "content": f"Logged ship {i}."})
    env = {
        **os.environ, **model_env,
        "QWENCHAT_DATA_DIR": str(data), "QWENCHAT_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    first = ask(env, test_model_path, "How many ships?")
    assert first["usage"]["cached_tokens"] == 0  # nothing saved yet
    saved = list((tmp_path / "cache" / "kv").glob("*/*.kvs"))
    assert len(saved) == 1
    second = ask(env, test_model_path, "Which came last?")
    # Everything up to the new question came from the saved state, including the
    # first process's reply.
    new_question = second["usage"]["prompt_tokens"] - second["usage"]["cached_tokens"]
    assert second["usage"]["cached_tokens"] > first["usage"]["prompt_tokens"]
    assert new_question < 30

    for state in (tmp_path / "cache" / "kv").glob("*/*.kvs"):
        state.write_bytes(b"not a llama.cpp state")  # damaged: ignored and deleted
    third = ask(env, test_model_path, "Say hi.")
    assert third["usage"]["cached_tokens"] == 0 and third["text"].strip()
    assert len(list((tmp_path / "cache" / "kv").glob("*/*.kvs"))) == 1  # only the new one


def test_a_state_changed_inside_is_discarded_not_loaded(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    """A file llama.cpp would load without complaint (its header intact, 1.5 KB of its
    keys and values overwritten) and whose model would then answer ``!!!!!!!!``."""
    env = {
        **os.environ, **model_env,
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"), "QWENCHAT_CACHE_DIR": str(tmp_path / "c"),
    }  # fmt: skip
    first = ask(env, test_model_path, "Name a colour of the sky.")
    [state] = (tmp_path / "c" / "kv").glob("*/*.kvs")
    with open(state, "r+b") as f:
        f.seek(state.stat().st_size * 3 // 10)  # keys of a layer: NaN halves
        f.write(b"\xff" * 1536)
    second = ask(env, test_model_path, "Name a colour of grass.")
    assert second["usage"]["cached_tokens"] == 0  # re-read, not loaded from the damaged file
    assert "!!!!" not in second["text"] and second["text"].strip()
    assert first["text"].strip()


# --- the prefix library: any saved state's longest common prefix --------------------


TOOLSETS = Path(__file__).resolve().parents[2] / "bench" / "toolsets"
GREEDY = Sampling(temperature=0, max_tokens=32)


def _prompt(question: str, system: str = "You are a helpful assistant.") -> list[Segment]:
    specs = load_tools([TOOLSETS]).registry.specs()
    messages = [SystemMessage(content=system), UserMessage(content=question)]
    return render_segments(messages, tools=specs)


def _reply(engine: LlamaEngine, prompt: list[Segment]) -> tuple[str, int]:
    generation = engine.generate(prompt, GREEDY)
    text = "".join(generation)
    assert generation.result is not None
    return text, generation.result.usage.cached_tokens


def test_a_new_conversation_reads_only_what_differs_and_answers_as_cold(
    test_model_path: Path, tmp_path: Path
) -> None:
    """Another process's conversation with the same system prompt and tools block: the
    new one loads its state, keeps the common prefix, and reads only its own question."""
    first = LlamaEngine(test_model_path, n_ctx=4096)
    first.use_kv_cache(KVCache(tmp_path, 1 << 30))
    _reply(first, _prompt("What is the weather in Oslo?"))
    # Saved: the head (system message with the tools block) and the state after the reply.
    assert len(list(tmp_path.glob("*.kvs"))) == 2
    second = LlamaEngine(test_model_path, n_ctx=4096)
    second.use_kv_cache(KVCache(tmp_path, 1 << 30))
    question = _prompt("What is the weather in Paris?")
    ids = second.tokenize(question)
    text, cached = _reply(second, question)
    assert len(ids) - cached <= 12  # "Paris?" and the turn's end
    cold, cold_cached = _reply(LlamaEngine(test_model_path, n_ctx=4096), question)
    assert cold_cached == 0 and text == cold


def test_a_changed_system_prompt_or_tools_block_never_reuses_a_stale_state(
    test_model_path: Path, tmp_path: Path
) -> None:
    first = LlamaEngine(test_model_path, n_ctx=4096)
    first.use_kv_cache(KVCache(tmp_path, 1 << 30))
    _reply(first, _prompt("What is the weather in Oslo?"))
    changed = _prompt("What is the weather in Oslo?", system="You are a terse assistant.")
    second = LlamaEngine(test_model_path, n_ctx=4096)
    second.use_kv_cache(KVCache(tmp_path, 1 << 30))
    old, new = first.tokenize(_prompt("x")), second.tokenize(changed)
    common = next(i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
    text, cached = _reply(second, changed)
    assert cached <= common  # nothing past the first token that differs
    cold, _ = _reply(LlamaEngine(test_model_path, n_ctx=4096), changed)
    assert text == cold


def test_ask_with_tools_in_a_new_process_reads_only_the_question(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    env = {**os.environ, **model_env, "QWENCHAT_CACHE_DIR": str(tmp_path / "cache")}

    def ask_tools(question: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run(
            [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask", "--tools",
             "-m", str(test_model_path), "--max-tokens", "1", "--json", question],
            env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    cold = ask_tools("What is 2+2?")["usage"]
    warm = ask_tools("What is 3+3?")["usage"]
    assert cold["cached_tokens"] == 0
    assert warm["prompt_tokens"] - warm["cached_tokens"] <= 10
    listed = run_cli("cache", "list", env=env)
    assert listed.returncode == 0 and "qwen2.5-coder-0.5b" in listed.stdout
    cleared = run_cli("cache", "clear", env=env)
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert not list((tmp_path / "cache" / "kv").glob("*/*.kvs"))
