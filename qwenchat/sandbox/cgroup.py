"""A cgroup that bounds the sandbox as a whole: its memory and its number of processes.

``RLIMIT_AS`` bounds each process's address space, so N processes may hold N times
``memory_mb``, and pages of a memfd or a tmpfs count against no process at all. Where
qwenchat can make a cgroup, the kernel starts inside one whose memory limit is
``memory_mb`` (swap included where the kernel accounts it) and whose process limit is
``processes``: every byte the sandbox's processes hold, resident, in memfds or in its
tmpfs, counts, and the kernel's OOM killer picks a process of the sandbox at the limit.

qwenchat can make one as root (cgroup v2, or the v1 ``memory`` and ``pids``
hierarchies), or as a user in a cgroup v2 subtree delegated to them (systemd's user
session): beside its own cgroup, since cgroup v2 does not let a cgroup with processes
of its own hand controllers to children. Elsewhere only the per-process limits hold;
:func:`probe` says which, for ``qwenchat doctor``.

No library does this (the ``cgroups`` packages on PyPI are v1-only or need systemd's
D-Bus); it is a few files under ``/sys/fs/cgroup``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

_MIB = 1 << 20
_NAME = "qwenchat-sandbox-{pid}-{n}"
_REMOVE_TRIES = 50  # a killed process leaves its cgroup a moment after it is reaped
_counter = itertools.count()


class CgroupUnavailable(Exception):
    """No cgroup can be made here; the message says why."""


@dataclass(frozen=True)
class SandboxCgroup:
    """One sandbox's cgroup: a directory per hierarchy (one for v2, memory and pids for v1)."""

    version: int
    dirs: tuple[Path, ...]

    @property
    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join (what the launcher does)."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        """The processes in it now."""
        found: set[int] = set()
        for name in self.procs_files:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in Path(name).read_text().split()}
        return found

    def peak_bytes(self) -> int | None:
        """The most memory it has held (the kernel's own count), where that is known."""
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            for directory in self.dirs:
                with contextlib.suppress(OSError, ValueError):
                    return int((directory / name).read_text())
        return None

    def remove(self) -> None:
        """Remove the directories (once the processes are gone; retried a moment)."""
        for directory in self.dirs:
            for _ in range(_REMOVE_TRIES):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def create(memory_mb: int, processes: int) -> SandboxCgroup:
    """A new cgroup with these limits; raises :class:`CgroupUnavailable` if none can be made."""
    mounts = _mounts()
    reasons: list[str] = []
    if "cgroup2" in mounts:
        try:
            return _create_v2(mounts["cgroup2"], memory_mb, processes)
        except CgroupUnavailable as exc:
            reasons.append(f"cgroup v2: {exc}")
    if "memory" in mounts:
        try:
            return _create_v1(mounts, memory_mb, processes)
        except CgroupUnavailable as exc:
            reasons.append(f"cgroup v1: {exc}")
    raise CgroupUnavailable("; ".join(reasons) or "no cgroup file system is mounted")


@functools.cache
def probe() -> str | None:
    """None if this process can make a sandbox cgroup, else why not (made and removed once)."""
    try:
        create(128, 8).remove()
    except CgroupUnavailable as exc:
        return str(exc)
    return None


def _mounts() -> dict[str, Path]:
    """Mount points: ``cgroup2``, and each v1 controller (``memory``, ``pids``) by name."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, tail = line.partition(" - ")
            kind, _source, options = [*tail.split(), "", ""][:3]
            point = Path(fields.split()[4])
            if kind == "cgroup2":
                found.setdefault("cgroup2", point)
            elif kind == "cgroup":
                for option in options.split(","):
                    if option in ("memory", "pids"):
                        found.setdefault(option, point)
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per hierarchy: ``""`` for v2, else the controller's name."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                found[name] = path
    return found


def _new_dir(parent: Path) -> Path:
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CgroupUnavailable(f"{parent} is not writable by this user")
    directory = parent / _NAME.format(pid=os.getpid(), n=next(_counter))
    try:
        directory.mkdir()
    except OSError as exc:
        raise CgroupUnavailable(f"cannot create {directory}: {exc.strerror}") from None
    return directory


def _write(directory: Path, name: str, value: str, *, required: bool = True) -> None:
    path = directory / name
    if not required and not path.exists():
        return
    try:
        path.write_text(value)
    except OSError as exc:
        directory.rmdir()
        raise CgroupUnavailable(f"cannot set {path}: {exc.strerror}") from None


def _create_v2(mount: Path, memory_mb: int, processes: int) -> SandboxCgroup:
    own = _own_paths().get("", "/")
    # Beside its own cgroup (or at the top, which may have processes and children both).
    parent = mount / own.lstrip("/")
    if own != "/":
        parent = parent.parent
    try:
        controllers = set((parent / "cgroup.controllers").read_text().split())
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError as exc:
        raise CgroupUnavailable(f"cannot read {parent}: {exc.strerror}") from None
    if not {"memory", "pids"} <= controllers:
        raise CgroupUnavailable(f"{parent} has no memory and pids controllers to hand out")
    if not {"memory", "pids"} <= enabled:
        try:
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError as exc:
            raise CgroupUnavailable(
                f"cannot enable memory and pids in {parent}: {exc.strerror}"
            ) from None
    directory = _new_dir(parent)
    _write(directory, "memory.max", str(memory_mb * _MIB))
    _write(directory, "memory.swap.max", "0", required=False)
    _write(directory, "pids.max", str(processes))
    return SandboxCgroup(version=2, dirs=(directory,))


def _create_v1(mounts: dict[str, Path], memory_mb: int, processes: int) -> SandboxCgroup:
    own = _own_paths()
    memory = _new_dir(mounts["memory"] / own.get("memory", "/").lstrip("/"))
    _write(memory, "memory.limit_in_bytes", str(memory_mb * _MIB))
    # Memory plus swap, where swap is accounted: no way around the limit through swap.
    _write(memory, "memory.memsw.limit_in_bytes", str(memory_mb * _MIB), required=False)
    dirs = [memory]
    if "pids" in mounts:
        try:
            pids = _new_dir(mounts["pids"] / own.get("pids", "/").lstrip("/"))
            _write(pids, "pids.max", str(processes))
            dirs.append(pids)
        except CgroupUnavailable:
            pass  # RLIMIT_NPROC still bounds the processes
    return SandboxCgroup(version=1, dirs=tuple(dirs))
