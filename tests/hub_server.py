"""A stand-in for the Hugging Face hub, for the pull tests: no network needed.

A threaded ``http.server`` on 127.0.0.1 (a random port) answering what
huggingface_hub asks of the hub, for the repositories and files added to it:

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the model
  info, with ``sha`` (the commit) and, for ``?blobs=true``, each sibling's size
  and LFS ``sha256``;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: like the hub for an LFS file, a
  302 to a CDN address (``/cdn/{sha256}``) with ``X-Repo-Commit``,
  ``X-Linked-Etag`` and ``X-Linked-Size``; errors carry the hub's ``X-Error-Code``;
* ``HEAD``/``GET /cdn/{sha256}``: the bytes, with ``ETag``, ``Accept-Ranges`` and
  ``Range`` requests answered 206.

It can cut a download short (``cut_after``: send N bytes of the next GET of a
file, then drop the connection), ignore Range headers, and it logs every request
(method, path, Range header, body bytes sent) in :attr:`StandInHub.requests`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_CHUNK = 1 << 20


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    sent: int = 0
    """Body bytes sent (for a cut download: before the connection was dropped)."""


@dataclass
class HubFile:
    data: bytes | Path
    sha256: str
    size: int

    def chunks(self, start: int, end: int) -> Any:
        """The bytes [start, end), in chunks."""
        if isinstance(self.data, bytes):
            for pos in range(start, end, _CHUNK):
                yield self.data[pos : min(pos + _CHUNK, end)]
            return
        with open(self.data, "rb") as handle:
            handle.seek(start)
            pos = start
            while pos < end:
                chunk = handle.read(min(_CHUNK, end - pos))
                if not chunk:
                    return
                pos += len(chunk)
                yield chunk


@dataclass
class Repo:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class StandInHub:
    """The stand-in hub; use as a context manager, point ``HF_ENDPOINT`` at :attr:`url`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.cut_after: dict[str, int] = {}
        """File path -> bytes to send before dropping the connection, once."""
        self.ignore_range = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(
        self, repo_id: str, path: str, data: bytes | Path, *, sha256: str | None = None
    ) -> HubFile:
        """Serve ``data`` as ``path`` in ``repo_id``; ``sha256`` overrides the LFS sha256
        the API reports (to serve a file that fails its checksum)."""
        if sha256 is None:
            raw = data if isinstance(data, bytes) else data.read_bytes()
            sha256 = hashlib.sha256(raw).hexdigest()
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        repo = self.repos.setdefault(repo_id, Repo(hashlib.sha1(repo_id.encode()).hexdigest()))
        repo.files[path] = HubFile(data, sha256, size)
        return repo.files[path]

    def downloads(self, file: HubFile) -> list[Request]:
        """The GET requests for the bytes of ``file``."""
        return [r for r in self.requests if r.method == "GET" and r.path == f"/cdn/{file.sha256}"]

    def __enter__(self) -> StandInHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- lookups for the handler ---------------------------------------------------

    def _find_blob(self, sha256: str) -> tuple[str, HubFile] | None:
        for repo in self.repos.values():
            for path, file in repo.files.items():
                if file.sha256 == sha256:
                    return path, file
        return None

    def _take_cut(self, path: str) -> int | None:
        with self._lock:
            return self.cut_after.pop(path, None)

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route(body=False)

        def do_GET(self) -> None:
            self._route(body=True)

        # --- routing ---------------------------------------------------------------

        def _route(self, body: bool) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            request = Request(self.command, path, self.headers.get("Range"))
            hub._log(request)
            with contextlib.suppress(ConnectionError):
                if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                    self._model_info(match[1], match[2] or "main", "blobs=" in url.query)
                elif match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                    self._resolve(match[1], match[2], match[3])
                elif match := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
                    self._blob(match[1], request, body)
                else:
                    self._error(404, "NotFound", "no such endpoint")

        def _repo(self, repo_id: str, revision: str) -> Repo | None:
            """The repository at ``revision``; None once the hub's 404 is sent."""
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
            elif revision not in ("main", repo.commit):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return None
            return repo

        def _model_info(self, repo_id: str, revision: str, blobs: bool) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            siblings: list[dict[str, Any]] = []
            for path, file in repo.files.items():
                sibling: dict[str, Any] = {"rfilename": path}
                if blobs:
                    sibling["size"] = file.size
                    sibling["blobId"] = hashlib.sha1(path.encode()).hexdigest()
                    sibling["lfs"] = {"size": file.size, "sha256": file.sha256, "pointerSize": 134}
                siblings.append(sibling)
            info = {"_id": "x", "id": repo_id, "modelId": repo_id, "sha": repo.commit}
            self._json(200, {**info, "private": False, "siblings": siblings})

        def _resolve(self, repo_id: str, revision: str, path: str) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            file = repo.files.get(path)
            if file is None:
                self._error(404, "EntryNotFound", "Entry not found", commit=repo.commit)
                return
            self.send_response(302)
            self.send_header("Location", f"/cdn/{file.sha256}")
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{file.sha256}"')
            self.send_header("X-Linked-Size", str(file.size))
            self.send_header("ETag", f'"{hashlib.sha1(path.encode()).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _blob(self, key: str, request: Request, body: bool) -> None:
            found = hub._find_blob(key)
            if found is None:
                self._error(404, "EntryNotFound", "no such blob")
                return
            path, file = found
            start, end = 0, file.size
            requested = request.range if not hub.ignore_range else None
            if requested and (match := re.fullmatch(r"bytes=(\d+)-(\d*)", requested)):
                start = int(match[1])
                end = min(int(match[2]) + 1, file.size) if match[2] else file.size
                if start >= file.size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{file.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{file.size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{file.sha256}"')
            self.end_headers()
            if not body:
                return
            cut = hub._take_cut(path)
            for chunk in file.chunks(start, end):
                if cut is not None and request.sent + len(chunk) >= cut:
                    self.wfile.write(chunk[: cut - request.sent])
                    request.sent = cut
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                request.sent += len(chunk)

        # --- answers -----------------------------------------------------------------

        def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

        def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            headers = {"X-Error-Code": code, "X-Error-Message": message}
            if commit is not None:
                headers["X-Repo-Commit"] = commit
            self._json(status, {"error": message}, headers)

    return Handler
