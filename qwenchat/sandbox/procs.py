"""Process trees from ``/proc``: children, descendants, stopping and killing a whole tree.

Linux only, like the sandbox layers that use it. Every function tolerates processes
that exit while it looks at them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import defaultdict

_MAX_STOP_SWEEPS = 100


def _parent_pid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields restart after the last ")".
    return int(stat[stat.rindex(b")") + 2 :].split()[1])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_pid(entry)
            if parent is not None:
                children[parent].append(int(entry))
    return children


def exited(pid: int) -> bool:
    """Whether ``pid`` has exited: gone, or a zombie its parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].split()[0] == b"Z"


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return _children_map().get(pid, [])


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` in the process tree (not ``pid`` itself)."""
    tree = _children_map()
    found: set[int] = set()
    pending = list(tree.get(pid, []))
    while pending:
        child = pending.pop()
        if child not in found:
            found.add(child)
            pending.extend(tree.get(child, []))
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, everything below it, and its process group.

    Stops the tree first, sweeping until no new process appears: a stopped process
    cannot fork, so a fork bomb cannot outrun the kill by spawning between the scan and
    the signal. The process group catches children already orphaned to init.
    """
    stopped: set[int] = set()
    for _ in range(_MAX_STOP_SWEEPS):
        new = ({pid} | descendants(pid)) - stopped
        if not new:
            break
        for child in new:
            _signal(child, signal.SIGSTOP)
        stopped |= new
    for child in stopped:
        _signal(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def count_tasks(uid: int) -> int:
    """Tasks (threads included) whose real uid is ``uid``: what RLIMIT_NPROC counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="utf-8", errors="replace") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total
