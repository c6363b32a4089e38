"""The remote engine's transport: HTTP requests to one server, and their failures as one line.

:class:`Http` sends each request on a new connection (JSON in, JSON or a stream out) and
turns what goes wrong (a refused connection, an unknown host, a timeout, TLS, an HTTP
error status with the server's own message) into an
:class:`~qwenchat.errors.EngineConnectionError` that says what to do; :class:`Call` keeps
a streaming request's socket, so that a reply can be cancelled from another thread. Only
the standard library is used (``http.client``).

Why not httpx: a reply is cancelled by ``socket.shutdown(SHUT_RDWR)`` on the request's own
socket from the cancelling thread (:class:`Call`'s ``sock``, ``RemoteDecode.interrupt``),
which makes the streaming thread's blocked ``readline()`` return at once, while the httpx
installed here (``httpx2`` 2.16 on ``httpcore2``; ``httpx-sse`` is not installed) closes a
response with a bare ``sock.close()`` (``httpcore2._backends.sync``), and a
``Response.close()`` from another thread, tried, left the streaming thread's read blocked.
The shutdown would have to reach past httpx's API to its socket
(``response.extensions["network_stream"].get_extra_info("socket")``), so the transport stays
on ``http.client``, where the socket is at hand.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from qwenchat.errors import EngineConnectionError

CONNECT_TIMEOUT = 10.0

_USER_AGENT = "qwenchat"


def server_message(body: bytes, fallback: str) -> str:
    """The error message in an error response's body, on one short line."""
    text = body.decode("utf-8", errors="replace").strip()
    message: Any = text
    try:
        data = loads(text)
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


class Http:
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

    def open(self, method: str, path: str, body: Any = None, *, stream: bool = False) -> Call:
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
        return Call(conn, response, sock)

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
            data = loads(raw) if raw else None
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
        message = server_message(body, http.client.responses.get(status, "error"))
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
class Call:
    """One request's connection, response and socket."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: socket.socket | None

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def loads(text: str | bytes) -> Any:
    """``json.loads``, with JSON nested too deep for Python's parser a ``ValueError`` too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_quietly(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read()
    except (OSError, http.client.HTTPException):
        return b""
