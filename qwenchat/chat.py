"""The small public Python API: :class:`Chat`, a multi-turn conversation with a local model.

>>> from qwenchat import Chat
>>> chat = Chat(system="Answer in one word.")
>>> chat.send("What colour is the sky?").text
'Blue.'

The CLI's ``ask`` and the TUI are thin shells over this class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from qwenchat.chatml import AssistantMessage, Message, SystemMessage, UserMessage, render_segments
from qwenchat.config import Sampling, Settings, load_settings
from qwenchat.engine.base import Completion, Engine, FinishReason, Timings, Usage


class Reply(BaseModel):
    """One assistant reply with its usage and timings."""

    text: str
    model: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings

    @classmethod
    def from_completion(cls, completion: Completion, model: str) -> Reply:
        return cls(model=model, **completion.model_dump())


class ReplyStream:
    """Iterate for text deltas; :attr:`reply` is set when the stream ends.

    :meth:`cancel` (from any thread) ends the stream within one token; the
    partial reply is kept in the conversation with ``finish_reason="cancelled"``.
    """

    def __init__(self, chat: Chat, prompt_messages: list[Message]) -> None:
        self._chat = chat
        self._generation = chat.engine.generate(render_segments(prompt_messages), chat.sampling)
        self.reply: Reply | None = None

    def cancel(self) -> None:
        self._generation.cancel()

    def __iter__(self) -> Iterator[str]:
        yield from self._generation
        completion = self._generation.result
        assert completion is not None
        self._chat.messages.append(AssistantMessage(content=completion.text))
        self.reply = Reply.from_completion(completion, self._chat.engine.model_name)


def load_engine(
    model: str | Path | None,
    settings: Settings,
    warn: Callable[[str], None] = lambda _msg: None,
) -> Engine:
    """Resolve ``model`` (a path, a name, or None for the default) and load it."""
    from qwenchat.engine.llama import LlamaEngine
    from qwenchat.models import resolve_model

    path = resolve_model(
        str(model) if model is not None else None, settings.model, settings.resolved_models_dir()
    )
    engine = LlamaEngine(
        path,
        n_ctx=settings.engine.n_ctx,
        threads=settings.engine.threads,
        gpu_layers=settings.engine.gpu_layers,
    )
    arch = engine.gguf.architecture
    if arch != "qwen2":
        warn(f"{path.name} is a '{arch}' model, not Qwen2.5 (qwen2): replies and tool calls may be off")
    return engine


class Chat:
    """A conversation with a local Qwen2.5 model.

    Args:
        model: a GGUF path or a name in the models dir; None uses the configured
            default, then the models dir, then the bundled test model.
        system: the system prompt; None uses Qwen's default one.
        settings: the configuration (read from the config file when None).
        engine: an already loaded engine (shares its KV cache); overrides ``model``.
        **sampling: overrides of :class:`~qwenchat.config.Sampling`
            (``temperature``, ``top_p``, ``top_k``, ``repeat_penalty``, ``max_tokens``, ``seed``).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        system: str | None = None,
        *,
        settings: Settings | None = None,
        engine: Engine | None = None,
        **sampling: Any,
    ) -> None:
        settings = settings or load_settings()
        self.engine = engine or load_engine(model, settings)
        self.sampling = Sampling.model_validate({**settings.sampling.model_dump(), **sampling})
        system = system if system is not None else settings.system_prompt
        self.messages: list[Message] = [SystemMessage(content=system)] if system else []

    def stream(self, text: str) -> ReplyStream:
        """Add a user message and stream the reply (see :class:`ReplyStream`)."""
        self.messages.append(UserMessage(content=text))
        return ReplyStream(self, list(self.messages))

    def send(self, text: str) -> Reply:
        """Add a user message and return the whole reply."""
        stream = self.stream(text)
        for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply
