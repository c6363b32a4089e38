"""A remote engine: the same prompts, generated on an OpenAI-compatible server over HTTP.

qwenchat still renders the ChatML prompt itself and sends it as raw text to the
server's ``/v1/completions`` (never ``/v1/chat/completions``, whose template would
be the server's), streams the reply as server-sent events, and parses tool calls
itself. Only the standard library is used (``http.client``).

What the engine does itself, the same on every server:

* **Stop strings** are watched by the driver (:mod:`qwenchat.engine.driver`), not
  sent: servers cut a stop string out of the text, while the
  :class:`~qwenchat.engine.base.Engine` contract keeps the text up to the end of the
  chunk (one token on the servers below) that completes it, as the local engine
  does. The connection is then closed, which stops the server.
* **End of turn**: a ``<|im_end|>``/``<|endoftext|>`` that reaches the text (a
  server told to keep special tokens) ends the reply and is cut, as locally.
* **Cancellation**: :meth:`Generation.cancel` from any thread shuts the socket down
  (:meth:`Decode.interrupt`),
  so a read that waits on a slow server ends at once, and closing the connection
  makes the server stop generating.
* **Usage**: from the server's usage chunk when it sends one
  (``stream_options.include_usage``); otherwise the prompt is counted with the
  server's tokenizer and the reply by tokenizing its text (or, with no tokenizer,
  one token per streamed chunk). ``cached_tokens`` comes from the server
  (``prompt_tokens_details.cached_tokens``, or llama-server's ``timings.cache_n``),
  else it is 0: llama-cpp-python's server reuses its KV cache but does not say so.
* **Timings** come from the arrival times of the chunks: time to the first text,
  decode tokens/s between the first and the last.

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

Banned tokens (``<tool_call>`` in the agent's answer-only round) are sent as
``logit_bias`` -100 on their ids, where the server has a tokenizer; otherwise they
are not enforced (the agent loop copes with a call it did not want).

Known limit: servers take the prompt as one string and parse special tokens in all
of it, so ``<|im_end|>`` typed *inside a message* becomes a control token on a
remote server, where the local engine keeps it as text.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from qwenchat.chatml import ENDOFTEXT, IM_END, Segment
from qwenchat.config import DEFAULT_API_KEY_ENV, DEFAULT_SERVER_TIMEOUT, Sampling
from qwenchat.engine.base import Constraint, EngineInfo, Generation, Usage
from qwenchat.engine.driver import Decode, DrivenEngine, Piece, read_ahead
from qwenchat.errors import EngineConnectionError, InputError, Warn
from qwenchat.server_url import normalize_url

DEFAULT_N_CTX = 4096
"""The context window assumed when neither the server nor ``engine.n_ctx`` says."""
CONNECT_TIMEOUT = 10.0
BYTES_PER_TOKEN = 3.5
"""The estimate of token counts where the server has no tokenizer (Ollama)."""

_BAN_BIAS = -100  # the most negative logit_bias OpenAI-style servers accept
_EOG = (IM_END, ENDOFTEXT)
_MEMO_SIZE = 16
_SSE_FIELDS = ("event", "id", "retry")
_USER_AGENT = "qwenchat"

ServerKind = Literal["vllm", "llama-server", "llama-cpp-python", "ollama", "openai"]
_SERVER_NAMES: dict[str, str] = {
    "vllm": "vLLM",
    "llama-server": "llama-server",
    "llama-cpp-python": "llama-cpp-python's server",
    "ollama": "Ollama",
    "openai": "an OpenAI-compatible server",
}


def _server_message(body: bytes, fallback: str) -> str:
    """The error message in an error response's body, on one short line."""
    text = body.decode("utf-8", errors="replace").strip()
    message: Any = text
    try:
        data = _loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or json.dumps(error)
        elif error:
            message = error
        else:
            message = data.get("detail") or data.get("message") or text
        if not isinstance(message, str):
            message = json.dumps(message, ensure_ascii=False)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    first = " ".join(lines[0].split()) if lines else fallback
    return first if len(first) <= 200 else first[:200] + "…"


class _Http:
    """Requests to one server: a new connection each, JSON in, JSON or a stream out."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        api_key_env: str,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path
        self.https = parts.scheme == "https"
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def open(self, method: str, path: str, body: Any = None, *, stream: bool = False) -> _Call:
        """Send a request; the response's status is not checked. Raises
        :class:`EngineConnectionError` when the server cannot be reached."""
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.connect_timeout)
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream, application/x-ndjson, application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connected = False
        sock = None
        try:
            conn.connect()
            connected = True
            # Kept: the connection lets go of its socket when the response is the last.
            sock = conn.sock
            if sock is not None:
                sock.settimeout(self.timeout)
            conn.request(method, self.prefix + path, body=data, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self.failure(exc, connecting=not connected) from None
        return _Call(conn, response, sock)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, bytes]:
        """A whole request: the status, the JSON body (None if not JSON) and the raw body."""
        call = self.open(method, path, body)
        response = call.response
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self.failure(exc) from None
        finally:
            call.close()
        try:
            data = _loads(raw) if raw else None
        except ValueError:
            data = None
        return response.status, data, raw

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A request that must succeed with a JSON body."""
        status, data, raw = self.call(method, path, body)
        if status >= 300:
            raise self.http_error(status, raw, path)
        if data is None:
            raise EngineConnectionError(
                f"{self.url}{path} did not answer with JSON: is {self.url} an"
                " OpenAI-compatible server? (--engine URL)"
            )
        return data

    def failure(
        self, exc: BaseException, *, connecting: bool = False, mid_reply: bool = False
    ) -> EngineConnectionError:
        """A one-line error for a failed connection or read."""
        url = self.url
        if isinstance(exc, ConnectionRefusedError):
            return EngineConnectionError(
                f"cannot reach {url} (connection refused): is the server running? (--engine URL)"
            )
        if isinstance(exc, socket.gaierror):
            return EngineConnectionError(
                f"cannot reach {url} (unknown host {self.host!r}): check the URL (--engine URL)"
            )
        if isinstance(exc, TimeoutError):
            if connecting:
                return EngineConnectionError(
                    f"cannot reach {url} (no answer in {self.connect_timeout:g} s):"
                    " check the URL and that the server is up (--engine URL)"
                )
            during = " mid-reply" if mid_reply else ""
            return EngineConnectionError(
                f"{url} sent nothing for {self.timeout:g} s{during}: the server is busy or"
                " stuck; raise engine.timeout to wait longer"
            )
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or exc.__class__.__name__
            return EngineConnectionError(
                f"TLS with {url} failed ({reason}): check http:// versus https:// (--engine URL)"
            )
        what = "cannot reach" if connecting else "lost the connection to"
        during = " mid-reply" if mid_reply else ""
        if isinstance(exc, http.client.IncompleteRead):
            detail = "the stream was cut off"
        else:
            detail = str(exc) or exc.__class__.__name__
        return EngineConnectionError(
            f"{what} {url}{during} ({detail}): is the server still running?"
        )

    def http_error(self, status: int, body: bytes, path: str) -> EngineConnectionError:
        """A one-line error for an HTTP error status."""
        message = _server_message(body, http.client.responses.get(status, "error"))
        where = f"{self.url}{path}"
        if status in (401, 403):
            env = self.api_key_env
            if self.api_key:
                fix = f"check the API key in ${env}"
            elif env:
                fix = f"put the server's API key in ${env}"
            else:
                fix = "set engine.api_key_env to the variable holding the API key"
            return EngineConnectionError(
                f"{where} refused the request (HTTP {status}: {message}): {fix}"
            )
        if 300 <= status < 400:
            return EngineConnectionError(
                f"{where} redirects elsewhere (HTTP {status}): give the URL it redirects to,"
                " https:// perhaps (--engine URL)"
            )
        if status == 404:
            return EngineConnectionError(
                f"{where} was not found (HTTP 404: {message}): is the URL an OpenAI-compatible"
                " server, serving that model? (--engine URL, engine.model)"
            )
        return EngineConnectionError(f"{where} failed (HTTP {status}: {message})")


@dataclass
class _Call:
    """One request's connection, response and socket."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: socket.socket | None

    def close(self) -> None:
        self.response.close()
        self.conn.close()


@dataclass
class _Chunk:
    """One streamed event, whatever the server's format."""

    text: str = ""
    finish: str | None = None
    usage: dict[str, Any] | None = None
    cached: int | None = None


class RemoteEngine(DrivenEngine):
    """Generation on an OpenAI-compatible server (see the module's notes per server).

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
        self._http = _Http(
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
        server_ctx = self._identify(entry)
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

    def _identify(self, entry: dict[str, Any]) -> int | None:
        """Find out which server this is; returns its context size if it says."""
        owner = entry.get("owned_by")
        if owner == "vllm" or isinstance(entry.get("max_model_len"), int):
            self.kind = "vllm"
            self._tokenizers = ["prompt"]
            ctx = entry.get("max_model_len")
            return ctx if isinstance(ctx, int) and ctx > 0 else None
        if owner == "me":  # what llama-cpp-python's server says
            self.kind = "llama-cpp-python"
            self._tokenizers = ["extras"]
            return None
        status, props, _ = self._http.call("GET", "/props")
        if status == 200 and isinstance(props, dict) and "default_generation_settings" in props:
            self.kind = "llama-server"
            self._tokenizers = ["content"]
            settings = props.get("default_generation_settings") or {}
            ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            ctx = ctx if isinstance(ctx, int) else props.get("n_ctx")
            return ctx if isinstance(ctx, int) and ctx > 0 else None
        status, version, _ = self._http.call("GET", "/api/version")
        if status == 200 and isinstance(version, dict) and "version" in version:
            self.kind = "ollama"
            self._tokenizers = []
        return None

    @property
    def model_name(self) -> str:
        """The served model's name (a GGUF path's file name without ``.gguf``)."""
        name = self.remote_model or "remote"
        if name.lower().endswith(".gguf"):
            return PurePosixPath(name.replace("\\", "/")).stem
        return name

    @property
    def server(self) -> str:
        """The kind of server, in words."""
        return _SERVER_NAMES[self.kind]

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
            path, body = self._tokenize_request(name, text)
            status, data, raw = self._http.call("POST", path, body)
            tokens = data.get("tokens") if isinstance(data, dict) else None
            ids = _token_ids(tokens) if status == 200 else None
            if ids is not None:
                self._tokenizer = name
                return ids
            if self._tokenizer or status in (401, 403):
                raise self._http.http_error(status, raw, path)
        self._tokenizer = ""
        return None

    def _tokenize_request(self, name: str, text: str) -> tuple[str, dict[str, Any]]:
        model = {"model": self.remote_model} if self.remote_model else {}
        if name == "extras":  # llama-cpp-python
            return "/extras/tokenize", {**model, "input": text}
        if name == "content":  # llama-server
            return "/tokenize", {"content": text, "add_special": False}
        return "/tokenize", {**model, "prompt": text, "add_special_tokens": False}  # vLLM

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
        path, body = self._request(text, sampling, max_tokens, banned)
        decode = _RemoteDecode(self, path, body, self._count_text(text))
        decode.notice = self._constrain(body, constraint) if constraint is not None else None
        return decode

    def _constrain(self, body: dict[str, Any], constraint: Constraint) -> str | None:
        """Put the constraint in the request the way this server takes it; what to tell
        the user when it takes none."""
        if self.kind in ("llama-server", "llama-cpp-python"):
            body["grammar"] = constraint.gbnf
        elif self.kind == "vllm":
            body["guided_grammar"] = constraint.gbnf
        elif self.ollama and constraint.json_schema is not None:
            body["format"] = constraint.json_schema
        elif not constraint.hint:
            return (
                f"{self.server} takes no grammar here: the reply was generated unconstrained"
                " and may not follow the schema"
            )
        return None

    def _request(
        self, text: str, sampling: Sampling, max_tokens: int, banned: Sequence[str]
    ) -> tuple[str, dict[str, Any]]:
        if self.ollama:
            options: dict[str, Any] = {
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "top_k": sampling.top_k,
                "min_p": 0.0,
                "repeat_penalty": sampling.repeat_penalty,
                "num_predict": max_tokens,
                "num_ctx": self.n_ctx,
            }
            if sampling.seed is not None:
                options["seed"] = sampling.seed
            body = {"model": self.remote_model, "prompt": text, "raw": True, "stream": True}
            return "/api/generate", {**body, "options": options}
        vllm = self.kind == "vllm"
        llama = self.kind in ("llama-server", "llama-cpp-python")
        body = {
            "prompt": text,
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": -1 if vllm and sampling.top_k == 0 else sampling.top_k,
            "min_p": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if not vllm:
            body["repeat_penalty"] = sampling.repeat_penalty
        if not llama:
            body["repetition_penalty"] = sampling.repeat_penalty
        if self.remote_model:
            body["model"] = self.remote_model
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        ids = self._ban(banned)
        if ids:
            body["logit_bias"] = {str(token): _BAN_BIAS for token in ids}
        return "/v1/completions", body

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

    def _chunks(
        self, response: http.client.HTTPResponse, decode: _RemoteDecode
    ) -> Iterator[_Chunk]:
        """The stream's events, in one format whatever the server sends; raises
        :class:`EngineConnectionError` for a malformed stream or one cut short."""
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        finished = False
        if kind == "application/json":  # the server ignored "stream": one whole reply
            data = self._parse(response.read().decode("utf-8", errors="replace"))
            yield self._ollama_chunk(data) if self.ollama else self._openai_chunk(data)
            return
        payloads = _ndjson(response) if self.ollama else _sse(response)
        for payload in payloads:
            if payload is None:
                raise self._malformed("a line that is not server-sent events")
            if payload.strip() == "[DONE]":
                return
            data = self._parse(payload)
            chunk = self._ollama_chunk(data) if self.ollama else self._openai_chunk(data)
            finished = finished or chunk.finish is not None
            yield chunk
            if self.ollama and chunk.finish is not None:
                return
        if not finished and not decode.interrupted:
            raise EngineConnectionError(
                f"{self.url} broke off the reply mid-stream: is the server still running?"
            )

    def _parse(self, payload: str) -> dict[str, Any]:
        try:
            data = _loads(payload)
        except ValueError:
            raise self._malformed(f"not JSON: {payload[:60]!r}") from None
        if not isinstance(data, dict):
            raise self._malformed(f"not a JSON object: {payload[:60]!r}")
        if "error" in data:
            message = _server_message(json.dumps(data).encode(), "error")
            raise EngineConnectionError(f"{self.url} failed mid-reply: {message}")
        return data

    def _malformed(self, what: str) -> EngineConnectionError:
        return EngineConnectionError(
            f"{self.url} sent a malformed stream ({what}): is it an OpenAI-compatible server?"
            " (--engine URL)"
        )

    def _openai_chunk(self, data: dict[str, Any]) -> _Chunk:
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        if not isinstance(choice, dict):
            raise self._malformed("a choice that is not an object")
        text = choice.get("text")
        if text is None:  # a chat-style delta, from a server that streams them anyway
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
        if text is not None and not isinstance(text, str):
            raise self._malformed("text that is not a string")
        usage = data.get("usage")
        timings = data.get("timings")
        cached = timings.get("cache_n") if isinstance(timings, dict) else None
        finish = choice.get("finish_reason")
        return _Chunk(
            text=text or "",
            finish=finish if isinstance(finish, str) and finish else None,
            usage=usage if isinstance(usage, dict) else None,
            cached=_count(cached),
        )

    @staticmethod
    def _ollama_chunk(data: dict[str, Any]) -> _Chunk:
        text = data.get("response")
        chunk = _Chunk(text=text if isinstance(text, str) else "")
        if data.get("done"):
            reason = data.get("done_reason")
            chunk.finish = reason if isinstance(reason, str) and reason else "stop"
            chunk.usage = {
                "prompt_tokens": data.get("prompt_eval_count"),
                "completion_tokens": data.get("eval_count"),
            }
        return chunk


class _RemoteDecode(Decode):
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
                raw = _read_quietly(call.response)
                raise engine._http.http_error(call.response.status, raw, self.path)
            for chunk in engine._chunks(call.response, self):
                self.server_usage = chunk.usage or self.server_usage
                if chunk.cached is not None:
                    self.server_cached = chunk.cached
                finish = chunk.finish or finish
                if chunk.text:
                    text, end_of_turn = _cut_end_of_turn(chunk.text)
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
                prompt_tokens=_count(usage.get("prompt_tokens")) or self.prompt_tokens,
                completion_tokens=_count(usage.get("completion_tokens")) or 0,
            )
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict) and _count(details.get("cached_tokens")) is not None:
                cached = _count(details["cached_tokens"])
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


def _loads(text: str | bytes) -> Any:
    """``json.loads``, with JSON nested too deep for Python's parser a ``ValueError`` too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _count(value: Any) -> int | None:
    """A token count a server sent, if it is one: a non-negative integer of sane size
    (not a string, a float such as 1e400, a list or a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def _token_ids(tokens: Any) -> list[int] | None:
    """A tokenizer's answer as token ids (plain, or ``{"id": n}`` objects), or None
    when it is anything else."""
    if not isinstance(tokens, list):
        return None
    ids = [_count(t.get("id") if isinstance(t, dict) else t) for t in tokens]
    return None if any(i is None for i in ids) else ids  # type: ignore[return-value]


def estimate_tokens(text: str) -> int:
    """A token count for a server without a tokenizer: UTF-8 bytes / 3.5 (over for
    English, about right for Chinese)."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _text(prompt: list[Segment]) -> str:
    return "".join(seg.text for seg in prompt)


def _cut_end_of_turn(text: str) -> tuple[str, bool]:
    """The text before an end-of-turn marker, and whether there was one."""
    cuts = [i for i in (text.find(marker) for marker in _EOG) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _read_quietly(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read()
    except (OSError, http.client.HTTPException):
        return b""


def _sse(response: http.client.HTTPResponse) -> Iterator[str | None]:
    """The data of each server-sent event; None for a line that is not SSE at all."""
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            if data:
                yield "\n".join(data)
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):  # a comment: llama-cpp-python's pings
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif field not in _SSE_FIELDS:
            yield None


def _ndjson(response: http.client.HTTPResponse) -> Iterator[str]:
    """Ollama's stream: one JSON object a line."""
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            yield line
