"""The remote engine's streams: server-sent events and NDJSON, read into one kind of event.

A reply arrives as server-sent events (OpenAI-compatible servers: :func:`sse`), as one JSON
object a line (Ollama: :func:`ndjson`), or, from a server that ignored ``"stream"``, as one
whole JSON reply. This module reads those lines into payloads and a payload into a JSON
object (:func:`parse`, which makes a server's error mid-reply, or a payload that is not a
JSON object, an :class:`~qwenchat.errors.EngineConnectionError`), and holds :class:`Chunk`,
the event that every server's format is read into, with what reads a chunk's parts (a token
count a server sent, the cut at an end-of-turn marker). It sits between the transport
(:mod:`qwenchat.engine.remote.transport`: requests, whole replies, errors) and the dialects
(:mod:`qwenchat.engine.remote.dialects`), which say what each server's JSON objects mean.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from qwenchat.chatml import ENDOFTEXT, IM_END
from qwenchat.engine.remote.transport import loads, server_message
from qwenchat.errors import EngineConnectionError

_EOG = (IM_END, ENDOFTEXT)
_SSE_FIELDS = ("event", "id", "retry")


@dataclass
class Chunk:
    """One streamed event, whatever the server's format."""

    text: str = ""
    finish: str | None = None
    usage: dict[str, Any] | None = None
    cached: int | None = None


def parse(payload: str, url: str) -> dict[str, Any]:
    try:
        data = loads(payload)
    except ValueError:
        raise malformed(url, f"not JSON: {payload[:60]!r}") from None
    if not isinstance(data, dict):
        raise malformed(url, f"not a JSON object: {payload[:60]!r}")
    if "error" in data:
        message = server_message(json.dumps(data).encode(), "error")
        raise EngineConnectionError(f"{url} failed mid-reply: {message}")
    return data


def malformed(url: str, what: str) -> EngineConnectionError:
    return EngineConnectionError(
        f"{url} sent a malformed stream ({what}): is it an OpenAI-compatible server? (--engine URL)"
    )


def count(value: Any) -> int | None:
    """A token count a server sent, if it is one: a non-negative integer of sane size
    (not a string, a float such as 1e400, a list or a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def cut_end_of_turn(text: str) -> tuple[str, bool]:
    """The text before an end-of-turn marker, and whether there was one."""
    cuts = [i for i in (text.find(marker) for marker in _EOG) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def sse(response: http.client.HTTPResponse) -> Iterator[str | None]:
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


def ndjson(response: http.client.HTTPResponse) -> Iterator[str]:
    """Ollama's stream: one JSON object a line."""
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            yield line
