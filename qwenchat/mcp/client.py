"""One MCP server, as the tool registry sees it: started on first use, then kept open.

The official ``mcp`` SDK is asynchronous, and its sessions hold anyio task groups that
must be entered and left by one task; qwenchat's tool loop is synchronous. So each
server gets an event loop on a thread of its own, where one task opens the transport
(stdio or streamable HTTP) and the session and holds them until :meth:`McpServer.close`;
calls cross over with ``run_coroutine_threadsafe``.

Everything a server can do wrong becomes one line (:class:`ServerUnavailable` for the
registry, which leaves the server's tools out; :class:`McpCallFailed` for a call, which
the model sees as an error result), never a traceback or the server's own output on the
terminal: its stderr goes to a log file in the cache dir, and the SDK's log records
(a line of garbage on stdout, say) are not printed. A server that crashed is started
again for the next call.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from qwenchat.mcp.config import ServerConfig

_GROUP = getattr(builtins, "BaseExceptionGroup", ())  # an anyio task group's, from 3.11
logging.getLogger("mcp").addHandler(logging.NullHandler())
logging.getLogger("mcp").propagate = False  # the SDK logs a server's garbage as errors


class ServerUnavailable(Exception):
    """The server did not start or answer; the message says why, in one line."""


class McpCallFailed(Exception):
    """A call did not get a result (the server crashed, hung, or refused); one line."""


class McpServer:
    """A configured server: :meth:`tools` and :meth:`call` start it on first use."""

    def __init__(self, name: str, config: ServerConfig, log_dir: Path) -> None:
        self.name = name
        self.config = config
        self.log_path = log_dir / f"{name}.log"
        self.status = "not started"
        self._lock = threading.Lock()
        self._session: _Session | None = None

    def tools(self) -> list[Any]:
        """The server's tools (``mcp.types.Tool``), starting it if needed."""
        session = self._started()
        try:
            return list(session.run(session.client.list_tools(), self.config.timeout).tools)
        except Exception as exc:
            self._lost(exc)
            raise ServerUnavailable(f"MCP server {self.name!r}: {_why(exc, self)}") from None

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """``mcp.types.CallToolResult`` of one call; a crashed server is started again
        first. Raises :class:`McpCallFailed`."""
        try:
            session = self._started()
        except ServerUnavailable as exc:
            raise McpCallFailed(str(exc)) from None
        timeout = self.config.timeout
        try:
            call = session.client.call_tool(tool, arguments, read_timeout_seconds=timeout)
            return session.run(call, timeout + 5)  # the SDK's own timeout comes first
        except Exception as exc:
            self._lost(exc)
            raise McpCallFailed(f"MCP server {self.name!r}: {_why(exc, self)}") from None

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()
            self.status = "stopped"

    def _started(self) -> _Session:
        with self._lock:
            if self._session is None:
                self.status = "starting"
                try:
                    self._session = _Session(self.config, self.log_path)
                except Exception as exc:
                    self.status = f"failed: {_why(exc, self)}"
                    raise ServerUnavailable(
                        f"MCP server {self.name!r}: {_why(exc, self)}"
                    ) from None
                self.status = "running"
            return self._session

    def _lost(self, exc: BaseException) -> None:
        """After a failed request: a server whose connection closed is started again on
        the next call; one that timed out keeps its session (the SDK cancelled it)."""
        if not _timed_out(exc):
            with self._lock:
                session, self._session = self._session, None
            if session is not None:
                session.close()
            self.status = f"crashed: {_why(exc, self)}"


class _Session:
    """An open client session on a loop thread of its own."""

    def __init__(self, config: ServerConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="mcp")
        self._thread.start()
        self._ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._owner = asyncio.run_coroutine_threadsafe(self._hold(), self.loop)
        try:
            self.client = self._ready.result(timeout=config.timeout)
        except BaseException:
            self.close()
            raise

    def run(self, coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _hold(self) -> None:
        """The one task that opens the transport and session and holds them."""
        from mcp import ClientSession

        self._stop = asyncio.Event()
        try:
            async with (
                self._transport() as (read, write),
                ClientSession(read, write, read_timeout_seconds=self.config.timeout) as client,
            ):
                await client.initialize()
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        config = self.config
        if config.command is not None:
            from mcp import StdioServerParameters, stdio_client

            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            params = StdioServerParameters(
                command=config.command, args=config.args, env=config.env or None, cwd=config.cwd
            )
            with self.log_path.open("a", encoding="utf-8") as log:
                async with stdio_client(params, errlog=log) as streams:
                    yield streams
            return
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        assert config.url is not None
        timeout = httpx2.Timeout(config.timeout, read=config.timeout + 5)
        async with (
            httpx2.AsyncClient(headers=config.headers, timeout=timeout) as http,
            streamable_http_client(config.url, http_client=http) as streams,
        ):
            yield streams

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._owner.result(timeout=10)
        except BaseException:
            self._owner.cancel()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def _timed_out(exc: BaseException) -> bool:
    from mcp import MCPError
    from mcp.types import REQUEST_TIMEOUT

    return isinstance(exc, TimeoutError | concurrent.futures.TimeoutError) or (
        isinstance(exc, MCPError) and exc.code == REQUEST_TIMEOUT
    )


def _why(exc: BaseException, server: McpServer) -> str:
    """One line for what went wrong."""
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED

    config = server.config
    if _timed_out(exc):
        return f"no answer within {config.timeout:g} s (timeout in mcp.json)"
    if isinstance(exc, FileNotFoundError):
        return f"cannot start {config.command!r}: no such command"
    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        where = f"; its stderr is in {server.log_path}" if config.command else ""
        return f"the server closed the connection (it exited or crashed){where}"
    if isinstance(exc, _GROUP) and exc.exceptions:  # type: ignore[attr-defined]
        return _why(exc.exceptions[0], server)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]
