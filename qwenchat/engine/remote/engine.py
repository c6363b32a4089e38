"""The remote engine itself: :class:`RemoteEngine` and one streamed reply, :class:`RemoteDecode`.

:class:`RemoteEngine` connects (lists the server's models, picks one, finds out which server
it is and its context size), counts tokens with the server's tokenizer or estimates them
(:func:`estimate_tokens`), and turns each generation into a request in its server's dialect
(:mod:`qwenchat.engine.remote.dialects`); :class:`RemoteDecode` streams that request's reply
as the driver's pieces (:mod:`qwenchat.engine.driver`), shuts its socket down when the reply
is cancelled, and says what it used. This is the part that is the same on every server;
the HTTP is in :mod:`qwenchat.engine.remote.transport` and the stream formats in
:mod:`qwenchat.engine.remote.streaming`.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from typing import Any

from qwenchat.chatml import Segment
from qwenchat.config import DEFAULT_API_KEY_ENV, DEFAULT_SERVER_TIMEOUT, Sampling
from qwenchat.engine.base import Constraint, EngineInfo, Generation, Usage
from qwenchat.engine.driver import Decode, DrivenEngine, Piece, read_ahead
from qwenchat.engine.remote.dialects import (
    DIALECTS,
    Dialect,
    ServerKind,
    identify,
    token_ids,
    tokenize_request,
)
from qwenchat.engine.remote.streaming import Chunk, count, cut_end_of_turn, malformed, parse
from qwenchat.engine.remote.transport import CONNECT_TIMEOUT, Http, read_quietly
from qwenchat.errors import EngineConnectionError, InputError, Warn
from qwenchat.server_url import normalize_url

DEFAULT_N_CTX = 4096
"""The context window assumed when neither the server nor ``engine.n_ctx`` says."""
BYTES_PER_TOKEN = 3.5
"""The estimate of token counts where the server has no tokenizer (Ollama)."""

_MEMO_SIZE = 16


class RemoteEngine(DrivenEngine):
    """Generation on an OpenAI-compatible server (see the notes per server in
    :mod:`qwenchat.engine.remote.dialects`).

    Connecting asks the server for its models (and, depending on the server, its
    context size), so a wrong URL, a missing API key or a stopped server fails here,
    with :class:`~qwenchat.errors.EngineConnectionError`.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is fine).
        model: the served model to use; None: the first one the server lists. A model
            it does not list is replaced by that one, with a warning through ``warn``.
        api_key_env: the environment variable holding the API key (sent as a Bearer
            token when set).
        n_ctx: the context window; None: the server's, else :data:`DEFAULT_N_CTX`.
            When both are known the smaller wins.
        timeout: seconds to wait for the server's next bytes.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        n_ctx: int | None = None,
        timeout: float = DEFAULT_SERVER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        warn: Warn = lambda _msg: None,
    ) -> None:
        try:
            self.url = normalize_url(url)
        except ValueError as exc:
            raise InputError(f"engine URL: {exc}") from None
        self.api_key_env = api_key_env
        api_key = os.environ.get(api_key_env) if api_key_env else None
        self._http = Http(
            self.url,
            api_key=api_key or None,
            api_key_env=api_key_env,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        self._memo: OrderedDict[str, int] = OrderedDict()
        self._memo_lock = threading.Lock()
        self._banned_ids: dict[str, int | None] = {}
        self.kind: ServerKind = "openai"
        """Which server this is (``openai``: another OpenAI-compatible one)."""
        self._tokenizers: list[str] = ["extras", "content", "prompt"]
        self._tokenizer: str | None = None  # the working one, once found; "": none works

        listing = self._http.json("GET", "/v1/models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            raise EngineConnectionError(
                f"{self.url}/v1/models is not a model list: is {self.url} an OpenAI-compatible"
                " server? (--engine URL)"
            )
        entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
        served = [e["id"] for e in entries]
        self.remote_model = self._choose_model(model, served, warn)
        entry = next((e for e in entries if e["id"] == self.remote_model), {})
        dialect, server_ctx = identify(entry, self._http)
        self.kind = dialect.kind
        self._tokenizers = list(dialect.tokenizers)
        if n_ctx is not None and server_ctx is not None and n_ctx < server_ctx:
            self._n_ctx, self.n_ctx_source = n_ctx, f"engine.n_ctx; the server's is {server_ctx}"
        elif n_ctx is not None and server_ctx is not None:
            self._n_ctx, self.n_ctx_source = server_ctx, f"the server's; engine.n_ctx is {n_ctx}"
        elif n_ctx is not None:
            self._n_ctx, self.n_ctx_source = n_ctx, "engine.n_ctx"
        elif server_ctx is not None:
            self._n_ctx, self.n_ctx_source = server_ctx, "the server's"
        else:
            self._n_ctx, self.n_ctx_source = DEFAULT_N_CTX, "assumed: set engine.n_ctx"

    # What the server is

    def _choose_model(self, asked: str | None, served: list[str], warn: Warn) -> str | None:
        if asked is None:
            if not served:
                raise EngineConnectionError(
                    f"{self.url} lists no models (GET /v1/models): load one on the server,"
                    " or set engine.model"
                )
            return served[0]
        if not served or asked in served or f"{asked}:latest" in served:
            return asked
        listed = ", ".join(served[:5]) + (", …" if len(served) > 5 else "")
        warn(f"{self.url} does not serve model '{asked}' (it serves {listed}): using '{served[0]}'")
        return served[0]

    @property
    def model_name(self) -> str:
        """The served model's name (a GGUF path's file name without ``.gguf``)."""
        name = self.remote_model or "remote"
        if name.lower().endswith(".gguf"):
            return PurePosixPath(name.replace("\\", "/")).stem
        return name

    @property
    def dialect(self) -> Dialect:
        """What this kind of server wants (:mod:`qwenchat.engine.remote.dialects`)."""
        return DIALECTS[self.kind]

    @property
    def server(self) -> str:
        """The kind of server, in words."""
        return self.dialect.name

    @property
    def ollama(self) -> bool:
        return self.kind == "ollama"

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.model_name,
            n_ctx=self.n_ctx,
            runs_on=f"remote {self.url}",
            summary=(
                f"model {self.model_name} on {self.server} at {self.url},"
                f" n_ctx {self.n_ctx} ({self.n_ctx_source})"
            ),
        )

    # Tokens

    def _tokenize_text(self, text: str) -> list[int] | None:
        """The server's token ids for ``text`` (special tokens parsed), or None when it
        has no tokenizer endpoint."""
        if self._tokenizer == "":
            return None
        names = [self._tokenizer] if self._tokenizer else self._tokenizers
        for name in names:
            path, body = tokenize_request(name, text, self.remote_model)
            status, data, raw = self._http.call("POST", path, body)
            tokens = data.get("tokens") if isinstance(data, dict) else None
            ids = token_ids(tokens) if status == 200 else None
            if ids is not None:
                self._tokenizer = name
                return ids
            if self._tokenizer or status in (401, 403):
                raise self._http.http_error(status, raw, path)
        self._tokenizer = ""
        return None

    def tokenize(self, prompt: list[Segment]) -> list[int] | None:
        """The prompt's token ids as the server tokenizes it, or None without a tokenizer."""
        return self._tokenize_text(_text(prompt))

    def _count_text(self, text: str) -> int:
        with self._memo_lock:
            if text in self._memo:
                self._memo.move_to_end(text)
                return self._memo[text]
        ids = self._tokenize_text(text)
        count = len(ids) if ids is not None else estimate_tokens(text)
        with self._memo_lock:
            self._memo[text] = count
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return count

    def count_tokens(self, prompt: list[Segment]) -> int:
        """Exact with the server's tokenizer, else an estimate (:func:`estimate_tokens`)."""
        return self._count_text(_text(prompt))

    def _ban(self, banned: Sequence[str]) -> list[int]:
        ids = []
        for text in banned:
            if text not in self._banned_ids:
                tokens = self._tokenize_text(text)
                self._banned_ids[text] = tokens[0] if tokens and len(tokens) == 1 else None
            token = self._banned_ids[text]
            if token is not None:
                ids.append(token)
        return ids

    # Generating

    def generate_batch(
        self, prompt: list[Segment], samplings: Sequence[Sampling], *, stop: Sequence[str] = ()
    ) -> list[Generation]:
        """The replies requested all at once (vLLM and llama-server batch them)."""
        return read_ahead(super().generate_batch(prompt, samplings, stop=stop))

    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        text = _text(prompt)
        dialect = self.dialect
        path, body = dialect.request(
            text,
            sampling,
            max_tokens,
            model=self.remote_model,
            n_ctx=self.n_ctx,
            ban=lambda: self._ban(banned),
        )
        decode = RemoteDecode(self, path, body, self._count_text(text))
        decode.notice = dialect.constrain(body, constraint) if constraint is not None else None
        return decode

    def _count_reply(self, reply: str, chunks: int) -> int:
        """A reply's tokens when the server did not say: its text tokenized, else one per
        chunk (servers stream a token per chunk, or a few when they split a character)."""
        if not reply or self._tokenizer == "" or self.ollama:
            return chunks
        try:
            ids = self._tokenize_text(reply)
        except EngineConnectionError:
            return chunks
        return len(ids) if ids is not None else chunks

    def _chunks(self, response: http.client.HTTPResponse, decode: RemoteDecode) -> Iterator[Chunk]:
        """The stream's events, in one format whatever the server sends; raises
        :class:`EngineConnectionError` for a malformed stream or one cut short."""
        dialect = self.dialect
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        finished = False
        if kind == "application/json":  # the server ignored "stream": one whole reply
            data = parse(response.read().decode("utf-8", errors="replace"), self.url)
            yield dialect.chunk(data, self.url)
            return
        payloads = dialect.payloads(response)
        for payload in payloads:
            if payload is None:
                raise malformed(self.url, "a line that is not server-sent events")
            if payload.strip() == "[DONE]":
                return
            data = parse(payload, self.url)
            chunk = dialect.chunk(data, self.url)
            finished = finished or chunk.finish is not None
            yield chunk
            if dialect.ends_at_finish and chunk.finish is not None:
                return
        if not finished and not decode.interrupted:
            raise EngineConnectionError(
                f"{self.url} broke off the reply mid-stream: is the server still running?"
            )


class RemoteDecode(Decode):
    """One reply streamed from the server; :meth:`interrupt` shuts its socket down, so a
    read blocked on the server returns at once (and the server stops generating)."""

    def __init__(self, engine: RemoteEngine, path: str, body: dict[str, Any], n_prompt: int):
        super().__init__(prompt_tokens=n_prompt)
        self.engine = engine
        self.path = path
        self.body = body
        self.interrupted = False
        self.drained = False
        """The stream ran to the server's own end (its usage then counts)."""
        self.chunks = 0
        self.server_usage: dict[str, Any] | None = None
        self.server_cached: int | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def pieces(self) -> Iterator[Piece]:
        engine = self.engine
        call = engine._http.open("POST", self.path, self.body, stream=True)
        self._attach(call.sock)
        finish: str | None = None
        try:
            if call.response.status >= 300:
                raw = read_quietly(call.response)
                raise engine._http.http_error(call.response.status, raw, self.path)
            for chunk in engine._chunks(call.response, self):
                self.server_usage = chunk.usage or self.server_usage
                if chunk.cached is not None:
                    self.server_cached = chunk.cached
                finish = chunk.finish or finish
                if chunk.text:
                    text, end_of_turn = cut_end_of_turn(chunk.text)
                    self.chunks += 1
                    yield Piece(text)
                    if end_of_turn:
                        self.ended = True
                        return
            if not self.interrupted:  # else the stream ended because its socket was shut
                self.drained = True
                self.ended = finish != "length"
        except EngineConnectionError:
            if not self.interrupted:  # a cancel cuts the stream short: that is no error
                raise
        except (OSError, http.client.HTTPException) as exc:
            if not self.interrupted:
                raise engine._http.failure(exc, mid_reply=True) from None
        finally:
            self._attach(None)
            call.close()

    def usage(self, text: str, sampled: int) -> Usage:
        usage = self.server_usage
        cached = self.server_cached
        if self.drained and usage is not None:
            counted = Usage(
                prompt_tokens=count(usage.get("prompt_tokens")) or self.prompt_tokens,
                completion_tokens=count(usage.get("completion_tokens")) or 0,
            )
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict) and count(details.get("cached_tokens")) is not None:
                cached = count(details["cached_tokens"])
        else:
            counted = Usage(
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.engine._count_reply(text, self.chunks),
            )
        counted.cached_tokens = min(cached or 0, counted.prompt_tokens)
        return counted

    def _attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
        if sock is not None and self.interrupted:
            self._shutdown(sock)

    def interrupt(self) -> None:
        self.interrupted = True
        with self._lock:
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def estimate_tokens(text: str) -> int:
    """A token count for a server without a tokenizer: UTF-8 bytes / 3.5 (over for
    English, about right for Chinese)."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _text(prompt: list[Segment]) -> str:
    return "".join(seg.text for seg in prompt)
