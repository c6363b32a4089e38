"""Shared by the benchmarks: arguments, the model path, subprocess timing, medians, reports.

Every benchmark measures qwenchat next to a baseline in the same run, interleaved
(A/B/A/B...) so both see the same machine state, and reports medians, the ratio,
the target and PASS/FAIL; ``--json`` prints the same as one JSON object instead.
Progress goes to stderr, so ``--json`` output on stdout stays clean.

Exit status: 0 when the benchmark ran (whether it passed or not), 2 when it could not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
# The console script installed next to this interpreter (the venv's bin dir).
QWENCHAT = str(Path(sys.executable).with_name("qwenchat"))

T = TypeVar("T")


class BenchError(Exception):
    """The benchmark cannot run (no model, a contender crashed...)."""


class Crashed(BenchError):
    """A contender's process died from a signal (``SIGSEGV``...): a result in itself for
    a benchmark that compares builds, one of which may crash on this CPU."""

    def __init__(self, message: str, signal_name: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name


# --- arguments and setup -------------------------------------------------------


def parser(
    doc: str, *, repeats: int, warmup: int = 1, model: bool = True
) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark has; ``doc`` is the module docstring."""
    cli = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if model:
        cli.add_argument(
            "--model",
            default="test",
            help="a GGUF path, or 'test' / 'eval' for a bundled model, assembled into the "
            "data dir ($QWENCHAT_DATA_DIR or the default) before timing (default: test)",
        )
        cli.add_argument(
            "--threads",
            type=int,
            help="llama.cpp threads, the same for both sides "
            "(default: all CPUs this process may use, as qwenchat does)",
        )
    cli.add_argument(
        "--repeats", type=int, default=repeats, help=f"timed runs of each side (default {repeats})"
    )
    cli.add_argument(
        "--warmup",
        type=int,
        default=warmup,
        help=f"untimed rounds before the timed ones (default {warmup})",
    )
    cli.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return cli


def parse(cli: argparse.ArgumentParser) -> argparse.Namespace:
    args = cli.parse_args()
    if args.repeats < 1:
        cli.error("--repeats must be at least 1")
    if args.warmup < 0:
        cli.error("--warmup must be 0 or more")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        cli.error("--threads must be at least 1")
    return args


def model_path(arg: str | None) -> Path:
    """The model to benchmark: a path, or a bundled model assembled now (so not timed).

    The file is read once so that it sits in the page cache before any timing.
    """
    from qwenchat.errors import QwenchatError
    from qwenchat.models import EVAL_MODEL, TEST_MODEL, assemble
    from qwenchat.paths import data_dir

    specs = {"test": TEST_MODEL, "eval": EVAL_MODEL}
    name = arg or "test"
    try:
        if name in specs and not Path(name).exists():
            path = assemble(specs[name], data_dir() / "models")
        else:
            path = Path(name).expanduser().resolve()
            if not path.is_file():
                raise BenchError(f"model file {path} does not exist")
    except QwenchatError as exc:
        raise BenchError(str(exc)) from None
    warm_page_cache(path)
    return path


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(16 << 20):
            pass


def cpu_threads() -> int:
    """The CPUs this process may run on (what qwenchat uses by default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


_SCRATCH: tempfile.TemporaryDirectory[str] | None = None


def clean_env() -> dict[str, str]:
    """The environment for the processes timed, the same for qwenchat and its baseline.

    - An empty qwenchat config dir and no ``QWENCHAT_MODEL``: a config file on the
      machine (another system prompt, sampling, n_ctx...) cannot change what is
      measured; qwenchat still looks for its (missing) config file.
    - Byte-code caching on, into a temporary ``PYTHONPYCACHEPREFIX``: the timed
      processes run compiled modules as in a normal install even where
      ``PYTHONDONTWRITEBYTECODE`` is set, and write nothing into the repository or
      the venv. The warm-up rounds fill that cache.
    """
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = tempfile.TemporaryDirectory(prefix="qwenchat-bench-")
        (Path(_SCRATCH.name) / "config").mkdir()
    env = dict(os.environ)
    env["QWENCHAT_CONFIG_DIR"] = str(Path(_SCRATCH.name) / "config")
    env["PYTHONPYCACHEPREFIX"] = str(Path(_SCRATCH.name) / "pycache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("QWENCHAT_MODEL", None)
    return env


def chatml_prompt(user: str) -> str:
    """The ChatML text qwenchat sends for one user message with the default system prompt."""
    from qwenchat.chatml import render

    return render([{"role": "user", "content": user}])


# --- timing ---------------------------------------------------------------------


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command to its exit; return (wall seconds, stdout). stdin is empty."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(cmd),
        env=env if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        message = f"{' '.join(cmd[:3])}... exited with {proc.returncode}:\n{tail}"
        if proc.returncode < 0:
            raise Crashed(message, signal.Signals(-proc.returncode).name)
        raise BenchError(message)
    return elapsed, proc.stdout


def run_json(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command that prints one JSON object on its last line; return that object."""
    _, out = run(cmd, env=env)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BenchError(f"{' '.join(cmd[:3])}... printed no JSON: {out[-500:]!r}") from None


def interleave(
    runs: dict[str, Callable[[], T]], repeats: int, warmup: int = 0
) -> dict[str, list[T]]:
    """Run each contender once per round (A/B, B/A, A/B...); warm-up rounds are dropped.

    The order rotates every round so that no contender always runs first, right
    after a pause, or right after the same other one.
    """
    results: dict[str, list[T]] = {name: [] for name in runs}
    names = list(runs)
    rounds = warmup + repeats
    for i in range(rounds):
        label = f"warm-up {i + 1}/{warmup}" if i < warmup else f"run {i - warmup + 1}/{repeats}"
        for name in names[i % len(names) :] + names[: i % len(names)]:
            progress(f"{label}: {name}")
            value = runs[name]()
            if i >= warmup:
                results[name].append(value)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def progress(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- reports ------------------------------------------------------------------


@dataclass
class Ratio:
    name: str
    value: float
    target: str | None = None  # e.g. ">= 0.97"; None: shown for information
    ok: bool | None = None


@dataclass
class Report:
    """What a benchmark prints: a header, tables, ratios against targets, warnings.

    ``results`` holds the raw figures (all runs, medians) for ``--json``.
    """

    benchmark: str
    config: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.tables.append((headers, [[_cell(c) for c in row] for row in rows]))

    def ratio(self, name: str, value: float, target: str | None = None) -> None:
        """Add a ratio; ``target`` like ``'>= 0.97'``, ``'<= 1.5'`` or ``'< 0.3'`` is checked."""
        ok = _meets(value, target) if target else None
        self.ratios.append(Ratio(name, value, target, ok))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.ratios if r.ok is not None)

    def emit(self, as_json: bool) -> None:
        if as_json:
            print(json.dumps(self.as_dict(), indent=2))
            return
        config = ", ".join(f"{k} {v}" for k, v in self.config.items())
        print(f"{self.benchmark}: {config}")
        for note in self.notes:
            print(f"  note: {note}")
        for headers, rows in self.tables:
            print()
            print_table(headers, rows)
        print()
        print_table(
            ["ratio", "value", "target", "result"],
            [[r.name, f"{r.value:.3f}", r.target or "(info)", _verdict(r.ok)] for r in self.ratios],
        )
        for warning in self.warnings:
            print(f"WARNING: {warning}")
        print(f"\n{self.benchmark}: {'PASS' if self.passed else 'FAIL'}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "config": self.config,
            "results": self.results,
            "ratios": [r.__dict__ for r in self.ratios],
            "warnings": self.warnings,
            "notes": self.notes,
            "pass": self.passed,
        }


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _meets(value: float, target: str) -> bool:
    op, _, bound = target.partition(" ")
    limit = float(bound)
    checks = {
        ">=": value >= limit,
        "<=": value <= limit,
        ">": value > limit,
        "<": value < limit,
    }
    return checks[op]


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "FAIL"


def main_guard(main: Callable[[], None]) -> None:
    """Run ``main``; a :class:`BenchError` becomes one message and exit status 2."""
    try:
        main()
    except BenchError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
