"""The Chat API over a scripted engine: turns, system prompts, streaming and cancelling."""

from __future__ import annotations

import pytest

from qwenchat.chat import Chat
from qwenchat.chatml import AssistantMessage, SystemMessage, UserMessage
from qwenchat.config import Settings
from tests.fakes import ScriptedEngine


def make_chat(replies: list[str], **kwargs) -> tuple[Chat, ScriptedEngine]:
    engine = ScriptedEngine(replies)
    return Chat(settings=Settings(), engine=engine, **kwargs), engine


def test_send_appends_both_turns_and_renders_history() -> None:
    chat, engine = make_chat(["Hi!", "Fine."], system="Be brief.")
    assert chat.send("Hello").text == "Hi!"
    reply = chat.send("How are you?")
    assert reply.text == "Fine." and reply.model == "scripted"
    assert chat.messages == [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello"),
        AssistantMessage(content="Hi!"),
        UserMessage(content="How are you?"),
        AssistantMessage(content="Fine."),
    ]
    second_prompt = engine.prompts[1]
    assert second_prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert "<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\nHow are you?" in second_prompt
    assert second_prompt.endswith("<|im_start|>assistant\n")


def test_default_system_prompt_comes_from_the_template() -> None:
    chat, engine = make_chat(["ok"])
    chat.send("x")
    assert chat.messages[0] == UserMessage(content="x")
    assert engine.prompts[0].startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud."
    )


def test_settings_system_prompt_is_used_unless_overridden() -> None:
    engine = ScriptedEngine(["a", "b"])
    chat = Chat(settings=Settings(system_prompt="From config."), engine=engine)
    assert chat.messages == [SystemMessage(content="From config.")]
    chat2 = Chat(settings=Settings(system_prompt="From config."), engine=engine, system="Flag.")
    assert chat2.messages == [SystemMessage(content="Flag.")]


def test_stream_yields_deltas_and_sets_reply() -> None:
    chat, _ = make_chat(["abc"])
    stream = chat.stream("go")
    assert list(stream) == ["a", "b", "c"]
    assert stream.reply is not None and stream.reply.usage.completion_tokens == 3


def test_cancel_keeps_the_partial_reply() -> None:
    chat, _ = make_chat(["abcdef"])
    stream = chat.stream("go")
    seen = []
    for delta in stream:
        seen.append(delta)
        stream.cancel()
    assert seen == ["a"]
    assert stream.reply is not None and stream.reply.finish_reason == "cancelled"
    assert chat.messages[-1] == AssistantMessage(content="a")


def test_sampling_overrides_are_validated() -> None:
    chat, _ = make_chat(["abcdef"], max_tokens=2, temperature=0)
    assert chat.sampling.temperature == 0 and chat.sampling.top_k == 20
    assert chat.send("x").text == "ab"


def test_load_engine_warns_about_other_architectures(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    import qwenchat.engine.llama
    from qwenchat.engine.load import load_engine
    from tests.gguf_builder import gguf_bytes, model_kv

    path = tmp_path / "llama3.gguf"
    path.write_bytes(gguf_bytes(model_kv(arch="llama")))
    loaded = SimpleNamespace(gguf=SimpleNamespace(architecture="llama"), offload_note=None)
    monkeypatch.setattr(qwenchat.engine.llama, "LlamaEngine", lambda *a, **k: loaded)
    warnings: list[str] = []
    assert load_engine(str(path), Settings(), warn=warnings.append) is loaded
    assert warnings == [
        "llama3.gguf is a 'llama' model, not Qwen2.5 (qwen2): replies and tool calls may be off"
    ]


def test_engine_load_on_a_thread_returns_the_engine() -> None:
    import threading

    from qwenchat.engine.load import EngineLoad

    threads: list[str] = []

    def fake_load(model, settings, warn):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        warn("careful")
        return ("engine", model)

    warnings: list[str] = []
    loading = EngineLoad("m.gguf", Settings(), warnings.append, load=fake_load)  # type: ignore[arg-type]
    assert loading.result() == ("engine", "m.gguf")
    assert threads == ["engine-load"] and warnings == ["careful"]


def test_engine_load_reraises_a_model_error_in_the_caller(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qwenchat.engine.load import EngineLoad
    from qwenchat.errors import ModelError

    loading = EngineLoad(str(tmp_path / "absent.gguf"), Settings())
    with pytest.raises(ModelError, match="not found"):
        loading.result()
