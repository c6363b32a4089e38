"""The remote engine's server dialects: what differs from one kind of server to the next.

One object per kind of server (:data:`DIALECTS`, found by :func:`identify`) says where a
completion is requested and how its body is written (sampling fields, the context size,
banned tokens), how a grammar or a JSON Schema is sent (:meth:`Dialect.constrain`), which
tokenizer endpoints to try (:attr:`Dialect.tokenizers`, :func:`tokenize_request`), and how
its stream reads (:meth:`Dialect.payloads`, :meth:`Dialect.chunk`). The engine
(:mod:`qwenchat.engine.remote.engine`) is the same for all of them and asks its dialect
wherever the servers differ, so that a server's quirks are in one place.

Per server (found from ``GET /v1/models``'s ``owned_by``, then ``/props`` and
``/api/version``):

* **llama-cpp-python** (``python -m llama_cpp.server``): the prompt is tokenized
  with special tokens parsed, so the ChatML markers become control tokens and a
  normal conversation gets exactly the local engine's prompt tokens. Tokenizer:
  ``POST /extras/tokenize``; it does not report its context size, so set
  ``engine.n_ctx`` to its ``--n_ctx`` (default assumed: 4096); no usage in streams.
* **llama-server** (llama.cpp, also in RPC mode): special tokens parsed; tokenizer
  ``POST /tokenize``; ``n_ctx`` from ``GET /props`` (per slot); usage in streams.
* **vLLM**: the HF tokenizer parses added tokens in text; tokenizer ``POST
  /tokenize``; ``n_ctx`` from ``/v1/models``' ``max_model_len``; ``top_k`` 0 is sent
  as -1 and ``repeat_penalty`` as ``repetition_penalty`` (HF-style, over the whole
  sequence, not llama.cpp's last 64 tokens).
* **Ollama**: its ``/v1/completions`` wraps the prompt in the model's own template,
  so the engine uses Ollama's native ``POST /api/generate`` with ``"raw": true``
  instead, and sends ``num_ctx`` (``engine.n_ctx``, default 4096). Ollama has no
  tokenizer endpoint and no ``logit_bias``: token counts are estimated (UTF-8
  bytes / 3.5) and ``banned`` tokens are not enforced.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

from qwenchat.config import Sampling
from qwenchat.engine.base import Constraint
from qwenchat.engine.remote.streaming import Chunk, count, malformed, ndjson, sse
from qwenchat.engine.remote.transport import Http

_BAN_BIAS = -100  # the most negative logit_bias OpenAI-style servers accept

ServerKind = Literal["vllm", "llama-server", "llama-cpp-python", "ollama", "openai"]


class Dialect:
    """What one kind of server wants; the base is what they share."""

    kind: ClassVar[ServerKind]
    name: ClassVar[str]
    """The kind of server, in words."""
    tokenizers: ClassVar[tuple[str, ...]]
    """The tokenizer endpoints to try (:func:`tokenize_request`), in order."""
    ends_at_finish: ClassVar[bool] = False
    """Whether the stream ends with the event that says why the reply finished."""

    def request(
        self,
        text: str,
        sampling: Sampling,
        max_tokens: int,
        *,
        model: str | None,
        n_ctx: int,
        ban: Callable[[], list[int]],
    ) -> tuple[str, dict[str, Any]]:
        """The path and body that request a streamed completion of ``text``; ``ban``
        gives the ids of the banned tokens, for a server that takes them."""
        raise NotImplementedError

    def constrain(self, body: dict[str, Any], constraint: Constraint) -> str | None:
        """Put the constraint in the request the way this server takes it; what to tell
        the user when it takes none."""
        if not constraint.hint:
            return (
                f"{self.name} takes no grammar here: the reply was generated unconstrained"
                " and may not follow the schema"
            )
        return None

    def payloads(self, response: http.client.HTTPResponse) -> Iterator[str | None]:
        """The stream's payloads (None: a line that is not server-sent events)."""
        return sse(response)

    def chunk(self, data: dict[str, Any], url: str) -> Chunk:
        """One parsed payload as a :class:`Chunk`."""
        raise NotImplementedError


class OpenAI(Dialect):
    """Another OpenAI-compatible server: ``/v1/completions``, no grammar."""

    kind: ClassVar[ServerKind] = "openai"
    name: ClassVar[str] = "an OpenAI-compatible server"
    tokenizers: ClassVar[tuple[str, ...]] = ("extras", "content", "prompt")
    penalties: ClassVar[tuple[str, ...]] = ("repeat_penalty", "repetition_penalty")
    """The fields the repeat penalty is sent as."""

    def top_k(self, top_k: int) -> int:
        return top_k

    def request(
        self,
        text: str,
        sampling: Sampling,
        max_tokens: int,
        *,
        model: str | None,
        n_ctx: int,
        ban: Callable[[], list[int]],
    ) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "prompt": text,
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": self.top_k(sampling.top_k),
            "min_p": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for field in self.penalties:
            body[field] = sampling.repeat_penalty
        if model:
            body["model"] = model
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        ids = ban()
        if ids:
            body["logit_bias"] = {str(token): _BAN_BIAS for token in ids}
        return "/v1/completions", body

    def chunk(self, data: dict[str, Any], url: str) -> Chunk:
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        if not isinstance(choice, dict):
            raise malformed(url, "a choice that is not an object")
        text = choice.get("text")
        if text is None:  # a chat-style delta, from a server that streams them anyway
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
        if text is not None and not isinstance(text, str):
            raise malformed(url, "text that is not a string")
        usage = data.get("usage")
        timings = data.get("timings")
        cached = timings.get("cache_n") if isinstance(timings, dict) else None
        finish = choice.get("finish_reason")
        return Chunk(
            text=text or "",
            finish=finish if isinstance(finish, str) and finish else None,
            usage=usage if isinstance(usage, dict) else None,
            cached=count(cached),
        )


class VLLM(OpenAI):
    """vLLM: ``top_k`` 0 as -1, the repeat penalty as ``repetition_penalty``, the
    grammar as ``guided_grammar``."""

    kind: ClassVar[ServerKind] = "vllm"
    name: ClassVar[str] = "vLLM"
    tokenizers: ClassVar[tuple[str, ...]] = ("prompt",)
    penalties: ClassVar[tuple[str, ...]] = ("repetition_penalty",)

    def top_k(self, top_k: int) -> int:
        return -1 if top_k == 0 else top_k

    def constrain(self, body: dict[str, Any], constraint: Constraint) -> str | None:
        body["guided_grammar"] = constraint.gbnf
        return None


class LlamaCpp(OpenAI):
    """llama.cpp's servers: the repeat penalty as ``repeat_penalty``, the grammar as
    ``grammar``."""

    penalties: ClassVar[tuple[str, ...]] = ("repeat_penalty",)

    def constrain(self, body: dict[str, Any], constraint: Constraint) -> str | None:
        body["grammar"] = constraint.gbnf
        return None


class LlamaServer(LlamaCpp):
    """llama-server; tokenizer ``POST /tokenize`` with ``content``."""

    kind: ClassVar[ServerKind] = "llama-server"
    name: ClassVar[str] = "llama-server"
    tokenizers: ClassVar[tuple[str, ...]] = ("content",)


class LlamaCppPython(LlamaCpp):
    """llama-cpp-python's server; tokenizer ``POST /extras/tokenize``."""

    kind: ClassVar[ServerKind] = "llama-cpp-python"
    name: ClassVar[str] = "llama-cpp-python's server"
    tokenizers: ClassVar[tuple[str, ...]] = ("extras",)


class Ollama(Dialect):
    """Ollama's native ``/api/generate``, raw; NDJSON; a JSON Schema as ``format``."""

    kind: ClassVar[ServerKind] = "ollama"
    name: ClassVar[str] = "Ollama"
    tokenizers: ClassVar[tuple[str, ...]] = ()
    ends_at_finish: ClassVar[bool] = True

    def request(
        self,
        text: str,
        sampling: Sampling,
        max_tokens: int,
        *,
        model: str | None,
        n_ctx: int,
        ban: Callable[[], list[int]],
    ) -> tuple[str, dict[str, Any]]:
        options: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": 0.0,
            "repeat_penalty": sampling.repeat_penalty,
            "num_predict": max_tokens,
            "num_ctx": n_ctx,
        }
        if sampling.seed is not None:
            options["seed"] = sampling.seed
        body = {"model": model, "prompt": text, "raw": True, "stream": True}
        return "/api/generate", {**body, "options": options}

    def constrain(self, body: dict[str, Any], constraint: Constraint) -> str | None:
        if constraint.json_schema is not None:
            body["format"] = constraint.json_schema
            return None
        return super().constrain(body, constraint)

    def payloads(self, response: http.client.HTTPResponse) -> Iterator[str | None]:
        return ndjson(response)

    def chunk(self, data: dict[str, Any], url: str) -> Chunk:
        text = data.get("response")
        chunk = Chunk(text=text if isinstance(text, str) else "")
        if data.get("done"):
            reason = data.get("done_reason")
            chunk.finish = reason if isinstance(reason, str) and reason else "stop"
            chunk.usage = {
                "prompt_tokens": data.get("prompt_eval_count"),
                "completion_tokens": data.get("eval_count"),
            }
        return chunk


DIALECTS: dict[ServerKind, Dialect] = {
    d.kind: d for d in (VLLM(), LlamaServer(), LlamaCppPython(), Ollama(), OpenAI())
}
"""Each kind of server's dialect."""


def identify(entry: dict[str, Any], http: Http) -> tuple[Dialect, int | None]:
    """Find out which server this is; returns its dialect and its context size if it says."""
    owner = entry.get("owned_by")
    if owner == "vllm" or isinstance(entry.get("max_model_len"), int):
        ctx = entry.get("max_model_len")
        return DIALECTS["vllm"], ctx if isinstance(ctx, int) and ctx > 0 else None
    if owner == "me":  # what llama-cpp-python's server says
        return DIALECTS["llama-cpp-python"], None
    status, props, _ = http.call("GET", "/props")
    if status == 200 and isinstance(props, dict) and "default_generation_settings" in props:
        settings = props.get("default_generation_settings") or {}
        ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        ctx = ctx if isinstance(ctx, int) else props.get("n_ctx")
        return DIALECTS["llama-server"], ctx if isinstance(ctx, int) and ctx > 0 else None
    status, version, _ = http.call("GET", "/api/version")
    if status == 200 and isinstance(version, dict) and "version" in version:
        return DIALECTS["ollama"], None
    return DIALECTS["openai"], None


def tokenize_request(name: str, text: str, model: str | None) -> tuple[str, dict[str, Any]]:
    """The path and body of a request to the tokenizer endpoint ``name``."""
    model_field = {"model": model} if model else {}
    if name == "extras":  # llama-cpp-python
        return "/extras/tokenize", {**model_field, "input": text}
    if name == "content":  # llama-server
        return "/tokenize", {"content": text, "add_special": False}
    return "/tokenize", {**model_field, "prompt": text, "add_special_tokens": False}  # vLLM


def token_ids(tokens: Any) -> list[int] | None:
    """A tokenizer's answer as token ids (plain, or ``{"id": n}`` objects), or None
    when it is anything else."""
    if not isinstance(tokens, list):
        return None
    ids = [count(t.get("id") if isinstance(t, dict) else t) for t in tokens]
    return None if any(i is None for i in ids) else ids  # type: ignore[return-value]
