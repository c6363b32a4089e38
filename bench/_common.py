"""Shared by the benchmarks: the model path, medians, and A/B runs interleaved."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from qwenchat.config import data_dir
from qwenchat.models import TEST_MODEL, assemble

QWENCHAT = str(Path(sys.executable).with_name("qwenchat"))


def model_path(path: Path | None) -> Path:
    """``path``, or the bundled test model assembled into the data dir (not timed)."""
    return path or assemble(TEST_MODEL, data_dir() / "models")


def median(values: list[float]) -> float:
    return statistics.median(values)


def interleave(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each contender once per round, in turn, so all see the same machine state."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return results


def wall_time(cmd: list[str], **kwargs: object) -> float:
    """Seconds for a command to run to its end (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
