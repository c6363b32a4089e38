"""The isolation layers around the kernel, detected once, and how to launch the kernel in one.

- ``bubblewrap`` (strength ``full``): ``bwrap`` with every namespace unshared (no
  network, a private pid namespace), an empty root with read-only ``/usr`` and Python
  install, a new ``/proc`` and ``/dev``, size-limited tmpfs ``/tmp`` and work dir, a
  cleared environment, uid 65534, no capabilities, and no setuid effect.
- ``rlimits`` (``weaker``): a plain subprocess in a new session and a private temp work
  dir, with a cleared environment and no setuid effect; as root it drops to uid 65534.
  Host files readable by that uid and the network stay reachable.
- ``none``: no isolation; :func:`plan_launch` refuses it unless unsandboxed running was
  explicitly allowed.

Every layer applies the resource limits of :class:`Limits` (in the kernel, before any
code runs), and the client adds a cgroup for the sandbox as a whole where it can
(:mod:`qwenchat.sandbox.cgroup`). Under bubblewrap the kernel is the pid namespace's
pid 1 (``--as-pid-1``), so no bwrap process in the sandbox holds qwenchat's pipes.

RLIMIT_NPROC never applies to uid 0, so code must not run as root: as root, ``bwrap``
runs without a user namespace (which would map the sandbox's uid back to host uid 0)
and the kernel drops to uid 65534 itself, its supervisor keeping real and saved uid
65533 so that code cannot signal it. As a regular user, ``bwrap``'s user namespace
gives the limit its own count (Linux 5.14 and later).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qwenchat.errors import QwenchatError
from qwenchat.sandbox import procs
from qwenchat.sandbox.limits import LayerName, Limits

__all__ = [
    "KERNEL_PATH",
    "SANDBOX_UID",
    "WORK_DIR",
    "KernelLaunch",
    "SandboxError",
    "SandboxLayer",
    "detect_layer",
    "plan_launch",
    "resolve_layer",
]

SANDBOX_UID = 65534  # "nobody": owns nothing on the host
# The kernel's supervisor, started as root, keeps this as its real and saved uid (effective:
# SANDBOX_UID), so that code, all SANDBOX_UID, cannot signal it (see kernel.py).
SUPERVISOR_UID = 65533
WORK_DIR = "/home/sandbox"  # the code's cwd and HOME inside bwrap
KERNEL_PATH = Path(__file__).with_name("kernel.py")
_KERNEL_IN_SANDBOX = "/run/qwenchat/kernel.py"
_PROBE_TIMEOUT_S = 10.0
_MIB = 1 << 20
# Only what Python and a shell need; nothing else of /etc (no passwd, shadow, hosts).
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_TOP_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class SandboxError(QwenchatError):
    """The sandbox cannot run code here (no usable layer, or it failed to start)."""


class SandboxLayer(BaseModel):
    """The isolation layer code runs in, and why it was chosen."""

    model_config = ConfigDict(frozen=True)

    name: LayerName
    strength: Literal["full", "weaker", "none"]
    reason: str = Field(description="one line: why this layer (e.g. 'bwrap not found')")


@dataclass(frozen=True)
class KernelLaunch:
    """How to start the kernel in a layer (pass to :class:`subprocess.Popen`)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    temp_dir: str | None  # a host work dir to delete when the kernel is gone
    in_pid_namespace: bool
    kernel_depth: int  # 0: the started process is the kernel; 1: its child; 2: grandchild


@dataclass(frozen=True)
class _Bwrap:
    path: str
    version: str
    options: frozenset[str]  # the options its --help lists


def _is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def _find_bwrap() -> _Bwrap | None:
    path = shutil.which("bwrap")
    if path is None:
        return None
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=5)
    version = run([path, "--version"]).stdout.strip().removeprefix("bubblewrap ")
    options = frozenset(w for w in run([path, "--help"]).stdout.split() if w.startswith("--"))
    return _Bwrap(path, version, options)


def _python_roots() -> list[str]:
    """The directories of the running Python (venv and base install) outside ``/usr``."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {os.path.realpath(p) for p in paths}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    roots: list[str] = []
    for path in sorted(p.rstrip("/") or "/" for p in paths):
        if path == "/" or path == "/usr" or path.startswith("/usr/"):
            continue
        if not any(path.startswith(root + "/") for root in roots):
            roots.append(path)
    return roots


def _parent_dirs(path: str, made: set[str]) -> list[str]:
    """``--dir`` options for the missing ancestors of ``path``, world-traversable.

    bwrap would create them itself, but as root with mode 0700, which uid 65534 could
    not traverse.
    """
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    for i in range(len(parts)):
        parent = "/" + "/".join(parts[: i + 1])
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]
    return args


def _bwrap_args(bwrap: _Bwrap, limits: Limits) -> list[str]:
    """The bwrap options (everything but the command) for one sandbox."""
    if _is_root():
        # Without a user namespace: in one, root stays host uid 0, which RLIMIT_NPROC
        # ignores. The kernel keeps only the capabilities to drop to uid 65534 itself.
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--cap-drop", "ALL"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args = ["--unshare-all", "--unshare-user", "--cap-drop", "ALL"]
        args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        if "--disable-userns" in bwrap.options:
            args.append("--disable-userns")
    args += ["--die-with-parent", "--new-session", "--clearenv"]
    if "--as-pid-1" in bwrap.options:
        # The kernel is the namespace's pid 1 (no bwrap reaper there holding qwenchat's
        # pipes): the kernel ignores SIGKILL sent from inside, and reaps the orphans itself.
        args.append("--as-pid-1")
    for name, value in _sandbox_env(home=WORK_DIR, tmp="/tmp").items():
        args += ["--setenv", name, value]
    size = ["--size", str(limits.disk_mb * _MIB)] if "--size" in bwrap.options else []
    made = {"/"}
    for path in ("/tmp", WORK_DIR):
        args += [*_parent_dirs(path, made), "--perms", "1777", *size, "--tmpfs", path]
    args += ["--ro-bind", "/usr", "/usr"]
    for path in _TOP_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    for root in _python_roots():
        args += [*_parent_dirs(root, made), "--ro-bind", root, root]
    args += ["--ro-bind", str(KERNEL_PATH), _KERNEL_IN_SANDBOX]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", WORK_DIR]
    return args


def _sandbox_env(home: str, tmp: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        # For Pythons the code starts: the kernel's own -I ignores PYTHON* variables.
        "PYTHONDONTWRITEBYTECODE": "1",
        # BLAS thread pools would count against the process limit and the memory limit.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _probe(bwrap: _Bwrap) -> str | None:
    """Run an empty Python in a real sandbox; return why it failed, or None."""
    argv = [bwrap.path, *_bwrap_args(bwrap, Limits()), "--", sys.executable, "-I", "-c", ""]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"bwrap did not finish a test run in {_PROBE_TIMEOUT_S:g} s"
    if done.returncode == 0:
        return None
    error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    if "namespace" in error or "not permitted" in error:
        return f"user namespaces are blocked: {error}"
    return f"bwrap fails here: {error}"


@functools.cache
def detect_layer() -> SandboxLayer:
    """The strongest layer that works on this machine (run once; the result is cached)."""
    if not sys.platform.startswith("linux"):
        return SandboxLayer(name="none", strength="none", reason=f"no sandbox for {sys.platform}")
    bwrap = _find_bwrap()
    if bwrap is None:
        return SandboxLayer(name="rlimits", strength="weaker", reason="bwrap not found")
    if "--perms" not in bwrap.options:
        reason = f"bwrap {bwrap.version} is too old (0.5 or later needed)"
        return SandboxLayer(name="rlimits", strength="weaker", reason=reason)
    failure = _probe(bwrap)
    if failure is not None:
        return SandboxLayer(name="rlimits", strength="weaker", reason=failure)
    reason = f"bwrap {bwrap.version} works"
    if "--size" not in bwrap.options:
        reason += "; its tmpfs cannot be size-limited, so only the file size limit holds"
    return SandboxLayer(name="bubblewrap", strength="full", reason=reason)


def resolve_layer(name: LayerName | None) -> SandboxLayer:
    """The layer to use: detected for ``None``, else the one asked for if it can work."""
    if name is None:
        return detect_layer()
    if name == "bubblewrap":
        detected = detect_layer()
        if detected.name != "bubblewrap":
            raise SandboxError(f"the bubblewrap sandbox does not work here: {detected.reason}")
        return detected
    if name == "rlimits" and not sys.platform.startswith("linux"):
        raise SandboxError(f"the rlimits sandbox needs Linux, this is {sys.platform}")
    if name == "rlimits":
        return SandboxLayer(name=name, strength="weaker", reason="chosen explicitly")
    return SandboxLayer(name=name, strength="none", reason="chosen explicitly")


def _kernel_command(config: dict[str, object], kernel: str) -> list[str]:
    return [sys.executable, "-I", "-B", kernel, json.dumps(config)]


def _rlimits(limits: Limits, processes: int) -> dict[str, int]:
    return {
        "RLIMIT_AS": limits.memory_mb * _MIB,
        "RLIMIT_CPU": limits.cpu_s,
        "RLIMIT_FSIZE": limits.file_mb * _MIB,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_NPROC": processes,
        "RLIMIT_CORE": 0,  # a crash must not write a core file into the work dir
    }


def _kernel_config(
    limits: Limits, rlimits: dict[str, int], *, drop: bool, work_dir: str | None
) -> dict[str, object]:
    drop = drop and _is_root()
    return {
        "uid": SANDBOX_UID if drop else None,
        "supervisor_uid": SUPERVISOR_UID if drop else None,
        "rlimits": rlimits,
        "pid_namespace": work_dir is None,  # a host work dir means a plain subprocess
        "work_dir": work_dir,
        "max_output_chars": limits.max_output_chars,
    }


def plan_launch(layer: SandboxLayer, limits: Limits, allow_unsandboxed: bool) -> KernelLaunch:
    """How to start a kernel in ``layer``; refuses ``none`` unless ``allow_unsandboxed``."""
    if layer.name == "bubblewrap":
        bwrap = _find_bwrap()
        assert bwrap is not None  # resolve_layer only returns bubblewrap when it works
        rlimits = _rlimits(limits, limits.processes)
        config = _kernel_config(limits, rlimits, drop=True, work_dir=None)
        command = _kernel_command(config, _KERNEL_IN_SANDBOX)
        argv = [bwrap.path, *_bwrap_args(bwrap, limits), "--", *command]
        depth = 1 if "--as-pid-1" in bwrap.options else 2  # else bwrap's reaper is between
        return KernelLaunch(
            argv=argv, env={}, cwd=None, temp_dir=None, in_pid_namespace=True, kernel_depth=depth
        )
    if layer.name == "none" and not allow_unsandboxed:
        raise SandboxError(
            f"refusing to run code unsandboxed ({layer.reason}): install bubblewrap, "
            "or set sandbox.allow_unsandboxed = true in the config"
        )
    work_dir = tempfile.mkdtemp(prefix="qwenchat-sandbox-")
    if layer.name == "none":
        config = _kernel_config(limits, {}, drop=False, work_dir=work_dir)
    else:
        rlimits = _rlimits(limits, _process_limit(limits))
        config = _kernel_config(limits, rlimits, drop=True, work_dir=work_dir)
        if _is_root():
            os.chown(work_dir, SANDBOX_UID, SANDBOX_UID)
    return KernelLaunch(
        argv=_kernel_command(config, str(KERNEL_PATH)),
        env=_sandbox_env(home=work_dir, tmp=work_dir),
        cwd=work_dir,
        temp_dir=work_dir,
        in_pid_namespace=False,
        kernel_depth=0,
    )


def _process_limit(limits: Limits) -> int:
    """RLIMIT_NPROC for the rlimits layer, which has no user namespace of its own.

    The limit counts every task of the uid: the sandbox's own uid 65534 when root,
    otherwise the user's, whose other processes must keep room to run.
    """
    if _is_root():
        return limits.processes
    return procs.count_tasks(os.getuid()) + limits.processes
