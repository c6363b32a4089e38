"""The interpreter that runs inside the sandbox: a warm, notebook-like Python kernel.

:mod:`qwenchat.sandbox.client` starts it as ``python -I -B kernel.py CONFIG`` (``-I``: no
environment variables, no user site, and neither the script's directory nor the working
directory on ``sys.path``, so a ``sympy.py`` written by the code cannot shadow the real one;
``-B``: no bytecode files, which ``-I`` would not let ``PYTHONDONTWRITEBYTECODE`` ask for).
It imports nothing from qwenchat, which is not visible inside the sandbox: stdlib only.

Protocol: one JSON object per line. The pipes it was started with on fds 0 and 1 move to
private, close-on-exec fds at start-up; fd 0 becomes ``/dev/null`` and fds 1 and 2 a capture
file, so neither user code nor the programs it starts can write into the protocol. The kernel
first sends ``{"ready": true}``, then answers each request ``{"code": str, "timeout": float}``
with ``{"stdout": str, "error": str | null, "timed_out": bool}``.

Each request runs in one persistent namespace, as a notebook cell: variables and imports
persist, and the value of a final expression is shown as ``repr`` (``2+3`` shows ``5``).
``stdout`` is everything written to ``sys.stdout``, ``sys.stderr`` and fds 1 and 2, in order,
keeping its head and tail when longer than the configured limit. ``error`` is the last
line of the traceback, as the Qwen2.5-Math harness reports it (``NameError: name 'x' is not
defined``). SIGINT while code runs stops it with a ``TimeoutError`` and keeps the state.

CONFIG is a JSON object: ``uid`` (drop to this uid and gid when started as root, or null),
``rlimits`` (``{"RLIMIT_AS": n, ...}``, soft and hard), ``pid_namespace`` (whether the
sandbox has its own; without one the kernel becomes the subreaper of everything the code
starts, so orphans stay in its tree), ``work_dir`` (the host temp dir to remove should the
client die first, without a pid namespace) and ``max_output_chars``.

Processes a cell starts (forks, daemons, programs) are killed when the cell ends, and
everything ends when the client's end of the request pipe closes.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import contextlib
import difflib
import fcntl
import io
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import types
import warnings
from typing import Any

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_MAX_ERROR_CHARS = 2000
_ORPHAN_WAIT_S = 1.0
_READ_CHUNK = 1 << 20

_OWNER_PID = os.getpid()
_PROTOCOL_FDS: list[int] = []  # closed in forks of the kernel made by user code


class _Interrupt:
    """SIGINT handling: a KeyboardInterrupt while user code runs, nothing in between."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = False

    def handle(self, signum: int, frame: types.FrameType | None) -> None:
        # A SIGINT racing the end of a call must not break the kernel's own loop or reply.
        if self.armed:
            self.fired = True
            raise KeyboardInterrupt

    def arm(self) -> None:
        """Reinstall the handler (the previous call may have replaced it) and arm it."""
        signal.signal(signal.SIGINT, self.handle)
        self.fired = False
        self.armed = True


class _Capture(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` for user code, and the reader of the fd-level capture file.

    Keeps the first and last ``limit // 2`` characters, counting the rest, so endless
    printing costs bounded memory. Before each write it drains what programs wrote to
    fds 1 and 2 meanwhile, so ``print`` and ``os.system`` output stay in order.
    """

    def __init__(self, limit: int, fd: int) -> None:
        super().__init__()
        self._head_limit = limit - limit // 2
        self._tail_limit = limit // 2
        self._fd = fd
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._reset_text()

    def _reset_text(self) -> None:
        self._head = ""
        self._tail: list[str] = []
        self._tail_chars = 0
        self._total = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        """Do nothing: code closing ``sys.stdout`` must not break the cells after it."""

    def fileno(self) -> int:
        # Code that hands sys.stdout to a subprocess gets fd 1, which is captured too.
        return 1

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # as io.TextIOWrapper says it
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._drain()
        self._add(text)
        return len(text)

    def _add(self, text: str) -> None:
        self._total += len(text)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += text[:room]
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_chars += len(text)
            if self._tail_chars > 2 * self._tail_limit:
                joined = "".join(self._tail)
                kept = joined[len(joined) - self._tail_limit :]
                self._tail, self._tail_chars = [kept], len(kept)

    def _drain(self) -> None:
        try:
            size = os.fstat(self._fd).st_size
            while self._offset < size:
                chunk = os.pread(self._fd, min(_READ_CHUNK, size - self._offset), self._offset)
                if not chunk:
                    break
                self._offset += len(chunk)
                self._add(self._decoder.decode(chunk))
        except OSError:
            pass  # the code closed or broke fd 1/2's file; Python-level output still counts

    def take(self) -> str:
        """Everything captured since the last call (head, marker, tail), and start afresh."""
        self._drain()
        self._add(self._decoder.decode(b"", final=True))
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        self._offset = 0
        text = _shorten(self._head, "".join(self._tail), self._total, self._tail_limit)
        self._reset_text()
        return text


def _shorten(head: str, rest: str, total: int, tail_limit: int) -> str:
    """``head`` and the last ``tail_limit`` characters of ``rest``, marking the gap.

    ``total`` counts every character written, including those already dropped from ``rest``.
    """
    if total <= len(head) + tail_limit:
        return head + rest
    tail = rest[len(rest) - tail_limit :]
    return f"{head}\n... [{total - len(head) - len(tail)} characters truncated] ...\n{tail}"


def _truncate(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within about ``limit`` characters."""
    if len(text) <= limit:
        return text
    head = text[: limit - limit // 2]
    return _shorten(head, text[len(head) :], len(text), limit // 2)


def _last_traceback_line(exc: BaseException, namespace: dict[str, Any] | None = None) -> str:
    lines = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    line = lines[-1] if lines else type(exc).__name__
    return line + _did_you_mean(exc, namespace or {})


def _did_you_mean(exc: BaseException, namespace: dict[str, Any]) -> str:
    """Python 3.12's hint for a misspelt name, which 3.10 and 3.11 print only in the
    interactive traceback: small models otherwise re-send the same code after a NameError."""
    name = getattr(exc, "name", None)
    if not isinstance(exc, NameError) or not isinstance(name, str):
        return ""
    known = [k for k in namespace if not k.startswith("__")] + dir(builtins)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f". Did you mean: '{close[0]}'?" if close and close[0] != name else ""


def _take_protocol_fds() -> tuple[io.BufferedReader, int]:
    """Move the protocol pipes off fds 0 and 1 (``os.dup`` makes close-on-exec copies)."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # input() gets EOFError at once.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives with the kernel
    return requests, replies


def _capture_std_fds() -> int:
    """Point fds 1 and 2 at an anonymous, append-only file; return a private fd on it."""
    if hasattr(os, "memfd_create"):
        # In memory: truncating it after each cell never waits on a busy disk.
        fd = os.memfd_create("qwenchat-output")
    else:
        fd, path = tempfile.mkstemp(prefix="qwenchat-output-")
        os.unlink(path)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return fd


def _drop_privileges(uid: int) -> None:
    """Become ``uid`` for good (no saved root), keeping the Python install importable.

    On a layer without a mount namespace the interpreter may live where ``uid`` cannot
    read (pyenv under a 0700 ``/root``). Directories on ``sys.path`` opened before the
    switch stay reachable through ``/proc/self/fd``, whose links skip the permission
    checks on their ancestors; paths are remapped only where ``uid`` cannot reach them.
    """
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in sys.path if os.path.isdir(p)}
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    moved: dict[str, str] = {}
    for path, fd in fds.items():
        if os.access(path, os.R_OK | os.X_OK):
            os.close(fd)
        else:
            moved[path] = f"/proc/self/fd/{fd}"
    if not moved:
        return

    def remap(path: str) -> str:
        for old, new in moved.items():
            if path == old or path.startswith(old + "/"):
                return new + path[len(old) :]
        return path

    sys.path[:] = [remap(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):  # packages imported at start-up (encodings, collections)
            search[:] = [remap(p) for p in search]
    sys.path_importer_cache.clear()


def _prctl(option: int, value: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _harden(config: dict[str, Any]) -> None:
    if not sys.platform.startswith("linux"):
        return
    # setuid programs (sudo, su, mount) must not grant anything to the code.
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if not config["pid_namespace"]:
        # Without a pid namespace a double-forked daemon would escape to init; as the
        # subreaper the kernel keeps every descendant in its tree, where it is found.
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _watch_client(requests_fd: int, work_dir: str) -> None:
    """Without a pid namespace, end the kernel and its descendants when the client is gone.

    (bwrap's ``--die-with-parent`` does that for its sandbox.) A thread waiting for the
    client's end of the request pipe to close notices even while a cell runs, unless C
    code holds the GIL, and, unlike a parent-death signal, takes the descendants along.
    It also removes the host work dir, which the client, killed, could not.
    """

    def watch() -> None:
        poll = select.poll()
        poll.register(requests_fd, 0)  # hang-ups are always reported
        poll.poll()
        _kill_descendants(os.getpid())
        shutil.rmtree(work_dir, ignore_errors=True)
        os._exit(0)

    # The watcher is the kernel's own thread: Python 3.12's warning that fork() in a
    # threaded process may deadlock would only confuse the code's author.
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    threading.Thread(target=watch, daemon=True).start()


def _apply_rlimits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _in_forked_child() -> None:
    """After ``os.fork()`` in user code: let go of the protocol, print through fd 1."""
    for fd in _PROTOCOL_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115


def _run_cell(code: str, namespace: dict[str, Any]) -> None:
    tree = ast.parse(code, "<cell>")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        # "single" mode shows the value through sys.displayhook, as the REPL does.
        exec(compile(ast.Interactive(body=[last]), "<cell>", "single"), namespace)


def _execute(
    code: str, timeout: float, namespace: dict[str, Any], capture: _Capture, interrupt: _Interrupt
) -> dict[str, Any]:
    sys.stdout = sys.stderr = capture
    error = None
    try:
        interrupt.arm()
        _run_cell(code, namespace)
    except SystemExit as exc:
        # sys.exit() ends many scripts; a clean exit is no error for a cell either.
        if exc.code not in (None, 0):
            error = _last_traceback_line(exc)
    except BaseException as exc:  # everything the code raises is its result
        error = _last_traceback_line(exc, namespace)
    finally:
        interrupt.armed = False
    if os.getpid() != _OWNER_PID:  # a fork of the kernel made by the code: only the kernel replies
        sys.stdout.flush()
        os._exit(0)
    if interrupt.fired:
        error = f"TimeoutError: execution timed out after {timeout:g} s; state is kept"
    return {
        "stdout": capture.take(),
        "error": None if error is None else _truncate(error, _MAX_ERROR_CHARS),
        "timed_out": interrupt.fired,
    }


def _end_processes(pid_namespace: bool) -> None:
    """Kill every process the cell left running, and reap them.

    Leftovers would hold the process limit and burn CPU between calls (a fork bomb's
    survivors keep refilling it), so, as in a harness that runs each piece of code in a
    fresh process, nothing a cell starts outlives it.
    """
    if pid_namespace:
        if not _others_in_namespace():
            return
        os.kill(-1, signal.SIGKILL)  # everything in the namespace but its pid 1 and the caller
        _reap_children()
        # Orphans are bwrap's pid 1's to reap; they hold the process limit until it has.
        deadline = time.monotonic() + _ORPHAN_WAIT_S
        while _others_in_namespace() and time.monotonic() < deadline:
            time.sleep(0.001)
    elif _has_children():  # as subreaper, any descendant implies a child
        _kill_descendants(os.getpid())
        _reap_children()


def _others_in_namespace() -> bool:
    """Whether the sandbox has processes besides bwrap's pid 1 and the kernel.

    The namespace's own /proc lists only the sandbox's processes.
    """
    me = str(os.getpid())
    return any(e.isdigit() and e not in ("1", me) for e in os.listdir("/proc"))


def _reap_children() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _has_children() -> bool:
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _kill_descendants(root: int) -> None:
    """Stop the tree below ``root`` until no new process appears, then kill it.

    A stopped process cannot fork, so a fork bomb cannot outrun the sweep.
    """
    stopped: set[int] = set()
    while new := _descendants(root) - stopped:
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        _signal(pid, signal.SIGKILL)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: fields restart after ")".
            parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, []))
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


def _user_namespace() -> dict[str, Any]:
    """A fresh ``__main__`` module for the code, so pickling its functions works."""
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    sys.argv = [""]
    return main.__dict__


def main() -> None:
    config = json.loads(sys.argv[1])
    requests, replies = _take_protocol_fds()
    _PROTOCOL_FDS.extend((requests.fileno(), replies))
    capture = _Capture(config["max_output_chars"], _capture_std_fds())
    if config["uid"] is not None and os.geteuid() == 0:
        _drop_privileges(config["uid"])
    _harden(config)
    _apply_rlimits(config["rlimits"])
    os.register_at_fork(after_in_child=_in_forked_child)
    if not config["pid_namespace"]:
        _watch_client(requests.fileno(), config["work_dir"])
    interrupt = _Interrupt()
    signal.signal(signal.SIGINT, interrupt.handle)
    namespace = _user_namespace()
    _send(replies, {"ready": True})
    for line in requests:
        request = json.loads(line)
        reply = _execute(request["code"], request["timeout"], namespace, capture, interrupt)
        _end_processes(config["pid_namespace"])
        _send(replies, reply)


if __name__ == "__main__":
    main()
