"""A warm, sandboxed Python interpreter per conversation: :class:`Sandbox`.

The interpreter is :mod:`qwenchat.sandbox.kernel`, started lazily in the layer
:mod:`qwenchat.sandbox.jail` chose. The kernel enforces each call's timeout itself
(SIGINT: the state survives; if the code does not stop within a second, its worker is
restarted). Should the kernel itself stop answering, the whole process tree is killed
and the next call starts a fresh one. No process outlives the sandbox:
:meth:`Sandbox.close`, garbage collection and interpreter exit all kill it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from qwenchat.sandbox import cgroup, procs
from qwenchat.sandbox.jail import (
    KernelLaunch,
    SandboxError,
    SandboxLayer,
    plan_launch,
    resolve_layer,
)
from qwenchat.sandbox.limits import LayerName, Limits

if TYPE_CHECKING:
    from qwenchat.config import SandboxSettings

__all__ = ["ExecResult", "Sandbox"]

# Past the call's timeout, how long the kernel may take to interrupt the code, restart its
# worker if it must, and reply, before it is taken for hung.
_REPLY_GRACE_S = 5.0
_START_TIMEOUT_S = 10.0
_EXIT_WAIT_S = 2.0
_LOST = "it was restarted and its state was lost"
# Joins the cgroup(s) named before "--", then becomes the command after it: every process
# of the sandbox is born inside.
_JOIN_CGROUP = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# Besides the code's own: bwrap, its reaper where the kernel is not pid 1, the supervisor.
_OWN_PROCESSES = 3
NO_OUTPUT = "(no output: print() the values you need)"


class ExecResult(BaseModel):
    """What running one piece of code produced."""

    model_config = ConfigDict(frozen=True)

    stdout: str  # stdout and stderr in order, head and tail kept when long
    error: str | None  # the last traceback line, or what happened to the interpreter
    timed_out: bool
    restarted: bool  # the interpreter's state was lost: the next call starts afresh
    duration_s: float

    def report(self) -> str:
        """What a model is shown: the output, then the error's one line (as the Qwen2.5-Math
        harness shows the last traceback line), or a hint when the code printed nothing."""
        parts = [self.stdout.rstrip("\n")] if self.stdout.strip() else []
        if self.error:
            parts.append(self.error)
        return "\n".join(parts) or NO_OUTPUT


class _Reply(BaseModel):
    """A kernel's reply frame; anything else from it is a protocol violation."""

    model_config = ConfigDict(extra="forbid")

    stdout: str
    error: str | None
    timed_out: bool
    restarted: bool


class _Request(BaseModel):
    """A request frame to the kernel."""

    model_config = ConfigDict(extra="forbid")

    code: str
    timeout: float


class _Ready(BaseModel):
    """The kernel's first frame: it is set up and waits for code."""

    model_config = ConfigDict(extra="forbid")

    ready: bool


class _Spawner:
    """Starts processes from one long-lived daemon thread.

    bwrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that started
    bwrap exits, not the process: a sandbox started from a short-lived worker thread
    would be killed with it.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], list[str], dict[str, Any]]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="qwenchat-sandbox-spawner", daemon=True
                )
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((future, argv, kwargs))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, argv, kwargs = self._jobs.get()
            try:
                future.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()


class _Died(Exception):
    """The kernel closed its end of the protocol: it is gone."""


class _Malformed(Exception):
    """The kernel sent something that is not a reply frame."""


@dataclass
class _Processes:
    """What must be cleaned up when a kernel goes: held apart so finalizers need no kernel."""

    popen: subprocess.Popen[bytes]
    launch: KernelLaunch
    cgroup: cgroup.SandboxCgroup | None
    ns_init: int | None = None  # the namespace's pid 1: killing it kills the whole namespace

    def kill(self) -> None:
        """Kill every process of the kernel and reap it."""
        if self.popen.poll() is None:
            if self.ns_init is not None:
                _kill(self.ns_init)
            else:
                procs.kill_tree(self.popen.pid)
        elif not self.launch.in_pid_namespace:
            _kill(-self.popen.pid)  # its process group: children orphaned by a crash
        try:
            self.popen.wait(_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            procs.kill_tree(self.popen.pid)
            self.popen.wait()

    def terminate(self) -> None:
        """Kill, then close the pipes, remove the host work dir and the cgroup."""
        self.kill()
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()
        if self.launch.temp_dir is not None:
            shutil.rmtree(self.launch.temp_dir, ignore_errors=True)
        if self.cgroup is not None:
            self.cgroup.remove()


def _kill(pid: int, signum: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


class _Kernel:
    """One running kernel process and its end of the protocol."""

    def __init__(
        self, launch: KernelLaunch, limits: Limits, bound: cgroup.SandboxCgroup | None
    ) -> None:
        # A reply holds the output (at most max_output_chars) and a short error line; a
        # character takes at most 6 bytes in JSON. Anything longer is not a reply.
        self._max_frame = 6 * limits.max_output_chars + 65536
        self._buffer = bytearray()
        argv = launch.argv
        if bound is not None:
            argv = ["/bin/sh", "-c", _JOIN_CGROUP, "sh", *bound.procs_files, "--", *argv]
        popen = _SPAWNER.popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=launch.env,
            cwd=launch.cwd,
            start_new_session=True,  # the terminal's Ctrl-C is for qwenchat, not the code
        )
        self._processes = _Processes(popen, launch, bound)
        self.cgroup = bound
        self._finalizer = weakref.finalize(self, self._processes.terminate)
        self._await_ready()
        chain = [popen.pid]  # bwrap, [its pid 1 reaper,] the kernel
        try:
            for _ in range(launch.kernel_depth):
                chain.append(_only_child(chain[-1]))
        except SandboxError:
            self.close()
            raise
        self.pid = chain[-1]
        """The kernel's host pid (its supervisor: the code runs in a child of it)."""
        if launch.in_pid_namespace:
            self._processes.ns_init = chain[1]

    def _await_ready(self) -> None:
        try:
            line = self._read_frame(time.monotonic() + _START_TIMEOUT_S)
            if line is None:
                raise _Died
            _Ready.model_validate_json(line)
        except (_Died, _Malformed, ValidationError):
            self.kill()
            stderr = self._processes.popen.stderr
            detail = stderr.read().decode(errors="replace").strip() if stderr else ""
            self.close()
            last = detail.splitlines()[-1] if detail else "no error message"
            raise SandboxError(f"the sandboxed interpreter did not start: {last}") from None

    def kill(self) -> None:
        """Kill the processes but keep the pipes: safe while another thread reads them."""
        self._processes.kill()

    def close(self) -> None:
        self._finalizer()

    def execute(self, code: str, timeout: float) -> tuple[ExecResult, bool]:
        """Run ``code``; returns the result and whether this kernel is still usable.

        The kernel times the code out, and restarts its worker, itself; a kernel that
        dies, hangs past that or sends a malformed frame is killed, and the result says so.
        """
        start = time.monotonic()

        def lost(error: str, timed_out: bool = False) -> tuple[ExecResult, bool]:
            self.close()
            duration = time.monotonic() - start
            result = ExecResult(
                stdout="", error=error, timed_out=timed_out, restarted=True, duration_s=duration
            )
            return result, False

        try:
            self._send(_Request(code=code, timeout=timeout))
            line = self._read_frame(start + timeout + _REPLY_GRACE_S)
            if line is None:
                error = f"TimeoutError: execution timed out after {timeout:g} s; the interpreter"
                return lost(f"{error} was restarted and its state was lost", timed_out=True)
            reply = _Reply.model_validate_json(line)
        except (_Died, BrokenPipeError):
            return lost(self._death_message())
        except (_Malformed, ValidationError):
            return lost(f"the interpreter sent a malformed reply; {_LOST}")
        result = ExecResult(
            stdout=reply.stdout,
            error=reply.error,
            timed_out=reply.timed_out,
            restarted=reply.restarted,
            duration_s=time.monotonic() - start,
        )
        return result, True

    def _send(self, request: _Request) -> None:
        stdin = self._processes.popen.stdin
        assert stdin is not None
        # json escapes what UTF-8 cannot carry (lone surrogates); the kernel gets it back.
        stdin.write(json.dumps(request.model_dump()).encode() + b"\n")

    def _read_frame(self, deadline: float) -> bytes | None:
        """The next line from the kernel, or None at ``deadline``."""
        stdout = self._processes.popen.stdout
        assert stdout is not None
        poll = select.poll()
        poll.register(stdout, select.POLLIN)
        while b"\n" not in self._buffer:
            if len(self._buffer) > self._max_frame:
                raise _Malformed
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poll.poll(remaining * 1000):
                return None
            chunk = os.read(stdout.fileno(), 1 << 16)
            if not chunk:
                raise _Died
            self._buffer += chunk
        line, _, rest = self._buffer.partition(b"\n")
        if len(line) > self._max_frame:
            raise _Malformed
        self._buffer = bytearray(rest)
        return bytes(line)

    def _death_message(self) -> str:
        popen = self._processes.popen
        try:
            code = popen.wait(_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            return f"the interpreter stopped answering; {_LOST}"
        # bwrap reports its command's death by signal N as exit code 128 + N, as shells do.
        if self._processes.launch.kernel_depth and code > 128:
            code = 128 - code
        if code >= 0:
            return f"the interpreter exited (code {code}); {_LOST}"
        name = signal.Signals(-code).name
        return f"the interpreter crashed (signal {-code}, {name}); {_LOST}"


def _only_child(pid: int) -> int:
    """The one child of ``pid`` (bwrap's chain: bwrap, [its pid 1,] the kernel)."""
    found = procs.children(pid)
    if len(found) != 1:
        raise SandboxError(f"expected one child of sandbox process {pid}, found {len(found)}")
    return found[0]


class Sandbox:
    """A sandboxed, warm Python interpreter: state persists between :meth:`run` calls.

    One per conversation. The interpreter starts on the first :meth:`run`; processes a
    call starts (subprocesses, forks, daemons) are killed when it ends. ``layer`` is
    ``None`` to use the strongest that works (:func:`~qwenchat.sandbox.detect_layer`), or
    a layer's name to insist on it. ``timeout`` is the default per-call wall-clock limit
    in seconds; ``limits`` the rest (:class:`~qwenchat.sandbox.limits.Limits`).
    The ``none`` layer runs code without isolation and is refused unless
    ``allow_unsandboxed``. Thread-safe: calls run one at a time.
    """

    def __init__(
        self,
        layer: LayerName | None = None,
        *,
        timeout: float = 10.0,
        limits: Limits | None = None,
        allow_unsandboxed: bool = False,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.limits = limits or Limits()
        self._layer_name = layer
        self._layer: SandboxLayer | None = None
        self.allow_unsandboxed = allow_unsandboxed
        self._kernel: _Kernel | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> Sandbox:
        """A sandbox as the ``[sandbox]`` config section describes it."""
        return cls(
            settings.layer,
            timeout=settings.timeout,
            limits=settings.limits,
            allow_unsandboxed=settings.allow_unsandboxed,
        )

    @property
    def layer(self) -> SandboxLayer:
        """The layer code runs in; raises :class:`SandboxError` if the one asked for cannot."""
        if self._layer is None:
            self._layer = resolve_layer(self._layer_name)
        return self._layer

    @property
    def can_run(self) -> bool:
        """Whether code can run here: in some isolation, or unsandboxed where that is allowed."""
        return self.layer.strength != "none" or self.allow_unsandboxed

    @property
    def pid(self) -> int | None:
        """The host pid of the running kernel (its supervisor), or None before the first call."""
        kernel = self._kernel
        return None if kernel is None else kernel.pid

    @property
    def interpreter_pid(self) -> int | None:
        """The host pid of the worker that runs the code (the kernel's one child between
        calls), or None when there is none."""
        kernel = self._kernel
        if kernel is None:
            return None
        children = [pid for pid in procs.children(kernel.pid) if not procs.exited(pid)]
        return children[0] if len(children) == 1 else None

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run ``code`` as the next notebook cell and return what it printed and raised.

        Raises :class:`SandboxError` when no interpreter can be started (or the sandbox
        is closed); everything the code does, including crashing, is in the result.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._kernel is None:
                launch = plan_launch(self.layer, self.limits, self.allow_unsandboxed)
                self._kernel = _Kernel(launch, self.limits, self._new_cgroup())
            result, usable = self._kernel.execute(
                code, self.timeout if timeout is None else timeout
            )
            if not usable or self._closed:
                self._kernel.close()
                self._kernel = None
            if self._closed:
                raise SandboxError("the sandbox was closed while the code ran")
            return result

    @property
    def cgroup(self) -> cgroup.SandboxCgroup | None:
        """The cgroup that bounds the running kernel, or None (not started, or none here)."""
        kernel = self._kernel
        return None if kernel is None else kernel.cgroup

    @property
    def memory_bound(self) -> str:
        """How the sandbox's memory is bounded here, in one line (for ``doctor``)."""
        if self.layer.strength == "none":
            return "not bounded (no sandbox)"
        why_not = cgroup.probe()
        if why_not is None:
            return f"memory bounded as a whole at {self.limits.memory_mb} MiB (a cgroup)"
        return (
            f"memory bounded per process only ({self.limits.memory_mb} MiB each, up to"
            f" {self.limits.processes} processes): no cgroup ({why_not})"
        )

    def _new_cgroup(self) -> cgroup.SandboxCgroup | None:
        """A cgroup for the next kernel, where one can be made (else per-process limits)."""
        if self.layer.strength == "none" or cgroup.probe() is not None:
            return None
        try:
            return cgroup.create(self.limits.memory_mb, self.limits.processes + _OWN_PROCESSES)
        except cgroup.CgroupUnavailable:
            return None

    def close(self) -> None:
        """Kill the interpreter and everything it started. Safe to call twice, or mid-run."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                if self._kernel is not None:
                    self._kernel.close()
                    self._kernel = None
            finally:
                self._lock.release()
        elif (kernel := self._kernel) is not None:
            kernel.kill()  # the running call sees the interpreter die and finishes the cleanup

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
