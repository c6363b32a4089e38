"""The sandbox's kernel: a supervisor that speaks qwenchat's protocol, and the worker it
forks to run the code, a warm, notebook-like Python interpreter.

:mod:`qwenchat.sandbox.client` starts it as ``python -I -B kernel.py CONFIG`` (``-I``: no
environment variables, no user site, and neither the script's directory nor the working
directory on ``sys.path``, so a ``sympy.py`` written by the code cannot shadow the real one;
``-B``: no bytecode files, which ``-I`` would not let ``PYTHONDONTWRITEBYTECODE`` ask for).
It imports nothing from qwenchat, which is not visible inside the sandbox: stdlib only.

**Two processes, so that code cannot write into the protocol.** The *supervisor* holds the
protocol pipes (fds 0 and 1 at start, moved to private fds) and never runs code. It forks
the *worker*, which holds the code's namespace and none of the supervisor's fds, sends it
each cell over a private pipe, and reads the worker's fds 1 and 2 (one pipe) itself, so
a result's output is what the cell's processes wrote, head and tail kept. The supervisor
enforces the timeout (SIGINT, then a restart), stops what a cell left running (threads
restart the worker; processes are killed), and only then replies. It is out of the code's
reach: not dumpable (no ptrace, no ``/proc/PID/fd`` or ``mem`` of it), under bubblewrap the
pid 1 of the sandbox's namespace (which ignores SIGKILL sent from inside), and, when
started as root, running with real and saved uids the code does not have, so the code
cannot signal it either.

The worker answers each cell with one status frame, ``{"cell": n, "error": str | null}``,
on a pipe of its own. A frame that is malformed, oversized, for another cell, or a second
one, is a protocol violation: the worker is restarted and the result says so; it never
becomes a result. What code can still change is its own interpreter, as code in any
notebook can (redefine ``print``, swallow its own errors): never what another process
reports, and never after the worker restarts.

Protocol with the client: one JSON object per line. The kernel first sends
``{"ready": true}``, then answers each request ``{"code": str, "timeout": float}`` with
``{"stdout": str, "error": str | null, "timed_out": bool, "restarted": bool}``.
``stdout`` is everything written to ``sys.stdout``, ``sys.stderr`` and fds 1 and 2, in
order. ``error`` is the last line of the traceback, as the Qwen2.5-Math harness reports
it (``NameError: name 'x' is not defined``), or what happened to the interpreter.
``restarted``: the worker was replaced and the code's state is gone. Each request runs in
one persistent namespace, as a notebook cell: variables and imports persist, and the value
of a final expression is shown as ``repr`` (``2+3`` shows ``5``).

CONFIG is a JSON object: ``uid`` (the worker's uid when started as root, or null),
``supervisor_uid`` (the supervisor's real and saved uid when started as root; its
effective uid is ``uid``), ``rlimits`` (``{"RLIMIT_AS": n, ...}``, soft and hard),
``pid_namespace`` (whether the sandbox has its own: then every process in it but the
supervisor and the worker is the code's to kill; without one, the supervisor watches the
request pipe to end the sandbox with the client), ``work_dir`` (the host temp dir to
remove should the client die first, or null) and ``max_output_chars``.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import contextlib
import ctypes
import difflib
import io
import json
import os
import resource
import select
import shutil
import signal
import sys
import threading
import time
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_MAX_ERROR_CHARS = 2000
# A status frame: a cell number and the error, whose characters JSON writes in 6 bytes at most.
_MAX_STATUS_BYTES = 6 * (_MAX_ERROR_CHARS + 100) + 256
_INTERRUPT_GRACE_S = 1.0  # how long an interrupted cell may take to stop
_THREAD_GRACE_S = 0.2  # how long threads a cell started may take to finish after it
_POLL_TICK_S = 0.05  # how often to look for the worker's death without a pidfd
_MAX_STOP_SWEEPS = 100
_ORPHAN_WAIT_S = 1.0
_READ_CHUNK = 1 << 16
_LOST = "it was restarted and its state was lost"

# Directories of sys.path kept open so the dropped uid can import from them (see
# _drop_privileges): the worker, which closes every fd it does not need, keeps these.
_PATH_FDS: list[int] = []


# --- output: what the cell's processes wrote -------------------------------------------


class _Output:
    """The worker's output pipe, read by the supervisor: the first and last
    ``limit // 2`` characters of it, counting the rest, so endless printing costs
    bounded memory."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit - limit // 2
        self._tail_limit = limit // 2
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._head = ""
        self._tail: list[str] = []
        self._tail_chars = 0
        self._total = 0

    def read_from(self, fd: int) -> None:
        """Everything the pipe holds now (it is non-blocking)."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(fd, _READ_CHUNK):
                self._add(self._decoder.decode(chunk))

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

    def text(self) -> str:
        """Head, a marker of what was dropped, and tail."""
        self._add(self._decoder.decode(b"", final=True))
        return _shorten(self._head, "".join(self._tail), self._total, self._tail_limit)


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


# --- the worker: runs the code ---------------------------------------------------------


class _Interrupt:
    """SIGINT handling in the worker: a KeyboardInterrupt while code runs, nothing between."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = False

    def handle(self, signum: int, frame: types.FrameType | None) -> None:
        # A SIGINT racing the end of a cell must not break the worker's own loop or report.
        if self.armed:
            self.fired = True
            raise KeyboardInterrupt

    def arm(self) -> None:
        """Reinstall the handler (the previous cell may have replaced it) and arm it."""
        signal.signal(signal.SIGINT, self.handle)
        self.fired = False
        self.armed = True


class _Stdout(io.TextIOWrapper):
    """``sys.stdout``/``sys.stderr`` for the code: fd 1, unbuffered, so ``print`` and
    ``os.system`` output stay in order. Closing it must not break the cells after it."""

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.flush()


def _new_stdout() -> _Stdout:
    raw = io.FileIO(1, "w", closefd=False)
    return _Stdout(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


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


def _run_cell(code: str, namespace: dict[str, Any]) -> None:
    tree = ast.parse(code, "<cell>")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        # "single" mode shows the value through sys.displayhook, as the REPL does.
        exec(compile(ast.Interactive(body=[last]), "<cell>", "single"), namespace)


def _execute(
    code: str, timeout: float, namespace: dict[str, Any], interrupt: _Interrupt
) -> str | None:
    """Run one cell; return its error line, or None."""
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
    if interrupt.fired:
        error = f"TimeoutError: execution timed out after {timeout:g} s; state is kept"
    return None if error is None else _truncate(error, _MAX_ERROR_CHARS)


def _user_namespace() -> dict[str, Any]:
    """A fresh ``__main__`` module for the code, so pickling its functions works."""
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    sys.argv = [""]
    return main.__dict__


def _close_fds_except(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _worker_main(tasks_fd: int, status_fd: int, output_fd: int, uid: int | None) -> None:
    """The worker, from fork to exit: become the code's interpreter and serve cells."""
    _close_fds_except({tasks_fd, status_fd, output_fd, *_PATH_FDS})
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd in (1, 2):  # the supervisor's were /dev/null and the client's stderr
        os.dup2(output_fd, fd)
    if uid is not None:  # the supervisor's real and saved uids go: the code cannot regain them
        os.setresuid(uid, uid, uid)
    me = os.getpid()

    def in_forked_child() -> None:  # a fork the code made: no reports from it
        for fd in (tasks_fd, status_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    os.register_at_fork(after_in_child=in_forked_child)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    interrupt = _Interrupt()
    signal.signal(signal.SIGINT, interrupt.handle)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - input() gets EOFError
    namespace = _user_namespace()
    tasks = os.fdopen(tasks_fd, "rb")
    for line in tasks:
        task = json.loads(line)
        _reap_own_children()  # what the supervisor killed after the last cell
        for fd in (1, 2):  # the code may have closed or moved them
            os.dup2(output_fd, fd)
        sys.stdout = sys.stderr = _new_stdout()
        error = _execute(task["code"], task["timeout"], namespace, interrupt)
        if os.getpid() != me:  # a fork of the worker made by the code: only the worker reports
            os._exit(0)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        _send(status_fd, {"cell": task["cell"], "error": error})
    os._exit(0)


# --- the supervisor: speaks the protocol, never runs code ------------------------------


class _Violation(Exception):
    """The worker broke the status protocol."""


class _Worker:
    """The forked interpreter: its pid and the supervisor's ends of its three pipes."""

    def __init__(self, uid: int | None) -> None:
        tasks_r, self.tasks = os.pipe()
        self.status, status_w = os.pipe()
        self.output, output_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                _worker_main(tasks_r, status_w, output_w, uid)
            finally:
                os._exit(1)
        for fd in (tasks_r, status_w, output_w):
            os.close(fd)
        os.set_blocking(self.status, False)
        os.set_blocking(self.output, False)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.cell = 0
        self._frame = bytearray()
        self.exit_status: int | None = None

    def send(self, code: str, timeout: float) -> None:
        self.cell += 1
        task = {"cell": self.cell, "code": code, "timeout": timeout}
        data = json.dumps(task).encode() + b"\n"
        while data:
            data = data[os.write(self.tasks, data) :]

    def read_status(self) -> dict[str, Any] | None:
        """The status frame, once a whole line has arrived; raises :class:`_Violation`."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(self.status, _READ_CHUNK):
                self._frame += chunk
                if len(self._frame) > _MAX_STATUS_BYTES:
                    raise _Violation
            if b"\n" not in self._frame:  # the worker closed its end without a frame
                raise _Violation
        if b"\n" not in self._frame:
            return None
        line, _, rest = self._frame.partition(b"\n")
        if rest:  # a second frame for one cell
            raise _Violation
        self._frame.clear()
        try:
            frame = json.loads(line)
        except ValueError:
            raise _Violation from None
        if not (
            isinstance(frame, dict)
            and frame.keys() == {"cell", "error"}
            and frame["cell"] == self.cell
            and isinstance(frame["error"], (str, type(None)))
        ):
            raise _Violation
        return frame

    def exited(self) -> bool:
        """Whether the worker is gone (its exit status is then kept)."""
        if self.exit_status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = status
        return self.exit_status is not None

    def threads(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return 0

    def kill(self) -> None:
        """Kill the worker and everything below it, reap them, close its pipes."""
        _kill_descendants(self.pid, including_root=True)
        if self.exit_status is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        _reap_children(spare=None)  # the worker's children, orphaned to the supervisor
        for fd in (self.tasks, self.status, self.output, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def death(self) -> str:
        """What happened to a worker that exited or died, for the result."""
        status = self.exit_status
        assert status is not None
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            name = signal.Signals(number).name
            return f"the interpreter crashed (signal {number}, {name}); {_LOST}"
        return f"the interpreter exited (code {os.waitstatus_to_exitcode(status)}); {_LOST}"


class _Supervisor:
    """Runs each request in the worker and builds the reply from what the worker did."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.uid: int | None = config["uid"]
        self.limit: int = config["max_output_chars"]
        self.pid_namespace: bool = config["pid_namespace"]
        self.worker: _Worker | None = None

    def run(self, code: str, timeout: float) -> dict[str, Any]:
        if self.worker is None:
            try:
                self.worker = _Worker(self.uid)
            except OSError as exc:  # no process left to fork (a limit)
                error = f"the interpreter could not be started ({exc.strerror}); try again"
                return {"stdout": "", "error": error, "timed_out": False, "restarted": True}
        worker = self.worker
        output = _Output(self.limit)
        error, timed_out, lost = self._wait(worker, code, timeout, output)
        if lost is None:
            lost = self._stop_threads(worker)
        _end_processes(spare=None if lost else worker.pid, pid_namespace=self.pid_namespace)
        output.read_from(worker.output)  # what the processes wrote before they were killed
        if lost:
            worker.kill()
            self.worker = None
            error = lost if error is None or timed_out else f"{error}\n{lost}"
        return {
            "stdout": output.text(),
            "error": error,
            "timed_out": timed_out,
            "restarted": lost is not None,
        }

    def _wait(
        self, worker: _Worker, code: str, timeout: float, output: _Output
    ) -> tuple[str | None, bool, str | None]:
        """Send the cell and wait for its status: (error, timed out, why the worker is lost)."""
        try:
            worker.send(code, timeout)
        except OSError:  # the worker died since the last cell, or closed its end
            if _sleep_until_exit(worker):
                return None, False, worker.death()
            return None, False, f"the interpreter stopped reading code; {_LOST}"
        deadline = time.monotonic() + timeout
        interrupted = False
        poll = select.poll()
        for fd in (worker.output, worker.status, worker.pidfd):
            if fd is not None:
                poll.register(fd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if interrupted:
                    message = f"TimeoutError: execution timed out after {timeout:g} s; the"
                    return None, True, f"{message} interpreter was restarted and its state was lost"
                _signal(worker.pid, signal.SIGINT)
                interrupted = True
                deadline = time.monotonic() + _INTERRUPT_GRACE_S
                continue
            tick = remaining if worker.pidfd is not None else min(remaining, _POLL_TICK_S)
            events = {fd for fd, _ in poll.poll(tick * 1000)}
            output.read_from(worker.output)
            try:
                frame = worker.read_status() if worker.status in events else None
            except _Violation:
                if worker.exited() or _sleep_until_exit(worker):
                    return None, interrupted, worker.death()
                return None, interrupted, f"the interpreter sent a malformed reply; {_LOST}"
            if frame is not None:
                output.read_from(worker.output)
                return frame["error"], interrupted, None
            if worker.exited():
                output.read_from(worker.output)
                return None, interrupted, worker.death()

    def _stop_threads(self, worker: _Worker) -> str | None:
        """None if the cell left no thread running; else why the worker must go."""
        deadline = time.monotonic() + _THREAD_GRACE_S
        while (count := worker.threads()) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        if count <= 1:
            return None
        left = count - 1
        return (
            f"the code left {left} thread{'s' if left > 1 else ''} running after the cell"
            f" ended, so the interpreter was restarted and its state was lost; join threads"
            " before the code ends"
        )


def _sleep_until_exit(worker: _Worker, wait: float = 0.5) -> bool:
    deadline = time.monotonic() + wait
    while not worker.exited():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- processes ---------------------------------------------------------------------------


def _end_processes(spare: int | None, *, pid_namespace: bool) -> None:
    """Kill every process of the code but ``spare`` (the worker), and reap them.

    Leftovers would hold the process limit and burn CPU between calls (a fork bomb's
    survivors keep refilling it), so, as in a harness that runs each piece of code in a
    fresh process, nothing a cell starts outlives it. In a pid namespace that is every
    process in it but pid 1, the supervisor and ``spare``; without one, every process
    below the supervisor, which is the subreaper, so even a double-forked daemon is there.
    """
    if pid_namespace:
        keep = {1, os.getpid(), spare}
        _stop_and_kill(lambda: {int(e) for e in os.listdir("/proc") if e.isdigit()} - keep)
    else:
        _kill_descendants(os.getpid(), spare=spare)
    _reap_children(spare=spare)


def _reap_children(*, spare: int | None) -> None:
    """Reap the supervisor's children but ``spare`` (whose exit the worker's own checks
    collect), all of them just killed. Their own killed children are orphaned to the
    supervisor as they die, so this goes on until none is left (or a second has passed)."""
    deadline = time.monotonic() + _ORPHAN_WAIT_S
    while (others := _children(os.getpid()) - {spare}) and time.monotonic() < deadline:
        for pid in others:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # each was sent SIGKILL: the wait is short


def _reap_own_children() -> None:
    """In the worker: reap every child that has exited."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _kill_descendants(root: int, *, spare: int | None = None, including_root: bool = False) -> None:
    """Kill the tree below ``root`` (but ``spare`` and its tree), and ``root`` too if asked."""
    extra = {root} if including_root else set()
    _stop_and_kill(lambda: _descendants(root, spare) | extra)


def _stop_and_kill(find: Callable[[], set[int]]) -> None:
    """SIGSTOP what ``find`` lists until two sweeps in a row find nothing new, then SIGKILL
    all of it. A stopped process cannot fork, so a fork bomb cannot outrun the sweep; the
    second sweep catches what a scan of /proc missed while a parent died mid-scan."""
    stopped: set[int] = set()
    quiet = 0
    for _ in range(_MAX_STOP_SWEEPS):
        new = find() - stopped
        quiet = quiet + 1 if not new else 0
        if quiet == 2:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        _signal(pid, signal.SIGKILL)


def _parents() -> dict[int, list[int]]:
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
    return children


def _children(pid: int) -> set[int]:
    return set(_parents().get(pid, []))


def _descendants(root: int, spare: int | None = None) -> set[int]:
    """Every process below ``root``, without ``spare`` and what is below it."""
    children = _parents()
    found: set[int] = set()
    pending = [p for p in children.get(root, []) if p != spare]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(p for p in children.get(pid, []) if p != spare)
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


# --- start-up ----------------------------------------------------------------------------


def _take_protocol_fds() -> tuple[io.BufferedReader, int]:
    """Move the protocol pipes off fds 0 and 1 (``os.dup`` makes close-on-exec copies)."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    return requests, replies


def _drop_privileges(uid: int, supervisor_uid: int) -> None:
    """Become the sandbox's uids for good: ``uid`` effective (files) with
    ``supervisor_uid`` real and saved (signals), keeping the Python install importable.

    The worker later sets all three to ``uid``; the code then cannot signal the supervisor,
    whose real and saved uids it does not have. On a layer without a mount namespace the
    interpreter may live where ``uid`` cannot read (pyenv under a 0700 ``/root``).
    Directories on ``sys.path`` opened before the switch stay reachable through
    ``/proc/self/fd``, whose links skip the permission checks on their ancestors; paths
    are remapped only where ``uid`` cannot reach them.
    """
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in sys.path if os.path.isdir(p)}
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(supervisor_uid, uid, supervisor_uid)
    moved: dict[str, str] = {}
    for path, fd in fds.items():
        if os.access(path, os.R_OK | os.X_OK, effective_ids=True):
            os.close(fd)
        else:
            moved[path] = f"/proc/self/fd/{fd}"
            _PATH_FDS.append(fd)
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
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _harden() -> None:
    if not sys.platform.startswith("linux"):
        return
    # setuid programs (sudo, su, mount) must not grant anything to the code.
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    # No ptrace of the supervisor, no /proc/PID/fd or mem: the protocol stays out of reach.
    _prctl(_PR_SET_DUMPABLE, 0)
    # Orphans of the code's processes come to the supervisor (already so as pid 1), where
    # the end-of-cell sweep finds them.
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _watch_client(requests_fd: int, work_dir: str | None) -> None:
    """Without a pid namespace, end the sandbox when the client is gone.

    (bwrap's ``--die-with-parent`` does that for its sandbox.) A thread waiting for the
    client's end of the request pipe to close kills every process below the supervisor
    and removes the host work dir, which the client, killed, could not.
    """

    def watch() -> None:
        poll = select.poll()
        poll.register(requests_fd, 0)  # hang-ups are always reported
        poll.poll()
        _kill_descendants(os.getpid())
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _apply_rlimits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


def main() -> None:
    config = json.loads(sys.argv[1])
    requests, replies = _take_protocol_fds()
    if config["uid"] is not None and os.geteuid() == 0:
        _drop_privileges(config["uid"], config["supervisor_uid"])
    _harden()
    _apply_rlimits(config["rlimits"])
    if not config["pid_namespace"]:
        _watch_client(requests.fileno(), config["work_dir"])
        # The watcher only waits on a pipe: the forks of the worker are safe, and Python
        # 3.12's warning that fork() in a threaded process may deadlock does not apply.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # SIGINT is the worker's, for timeouts
    supervisor = _Supervisor(config)
    _send(replies, {"ready": True})
    for line in requests:
        request = json.loads(line)
        _send(replies, supervisor.run(request["code"], request["timeout"]))


if __name__ == "__main__":
    main()
