"""The sandbox's warm round trip and cold start, against a bare `python3 -c 'print(1)'`.

Measured in this process, interleaved round by round (rotating order), per layer
(--layers, default: the detected layer, and rlimits when that is bubblewrap):

  warm print(1)       Sandbox.run("print(1)") on a started sandbox: one request over
                      the pipe, the cell run, the reply back (--calls per round);
  cold start          a new Sandbox, then run("print(1)"): the jail and the kernel
                      started, the first cell run, measured until its result;
  cold + imports      a new Sandbox, then run("import numpy, sympy"): as a first cell
                      that needs the math libraries;
  python3 -c print(1) the baseline: this interpreter started with -c 'print(1)' in a
                      subprocess, timed to its exit (what an unsandboxed, unwarmed
                      "run this code" costs at least).

Targets (issue 4): warm round trip median <= 20 ms; cold start <= 1 s.

    .venv/bin/python bench/sandbox_speed.py [--repeats 15] [--calls 50] [--warmup 1]
        [--layers bubblewrap,rlimits] [--json]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from _common import BenchError, Report, interleave, main_guard, median, parse, parser

WARM_TARGET_MS = 20
COLD_TARGET_MS = 1000


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_python() -> float:
    def run() -> None:
        subprocess.run([sys.executable, "-c", "print(1)"], check=True, capture_output=True)

    return timed(run)


def checked(result: object, expected: str) -> None:
    from qwenchat.sandbox import ExecResult

    assert isinstance(result, ExecResult)
    if result.error or result.stdout.strip() != expected:
        raise BenchError(f"the sandbox answered {result.stdout!r}, error {result.error!r}")


def contenders(layer: str, calls: int) -> dict[str, Callable[[], float]]:
    from qwenchat.sandbox import Sandbox

    warm = Sandbox(layer)  # kept across rounds; closed at exit
    checked(warm.run("print(1)"), "1")

    def warm_call() -> float:
        times = [timed(lambda: checked(warm.run("print(1)"), "1")) for _ in range(calls)]
        return statistics.median(times)

    def cold(code: str, expected: str) -> Callable[[], float]:
        def start() -> float:
            with Sandbox(layer) as sandbox:
                return timed(lambda: checked(sandbox.run(code), expected))

        return start

    return {
        f"{layer}: warm print(1)": warm_call,
        f"{layer}: cold start": cold("print(1)", "1"),
        f"{layer}: cold + import numpy, sympy": cold("import numpy, sympy\nprint(1)", "1"),
    }


def main() -> None:
    cli = parser(__doc__, repeats=15, warmup=1, model=False)
    cli.add_argument("--calls", type=int, default=50, help="warm calls per round (median)")
    cli.add_argument("--layers", help="comma-separated layers (default: detected, + rlimits)")
    args = parse(cli)

    from qwenchat.sandbox import detect_layer

    detected = detect_layer()
    layers = args.layers.split(",") if args.layers else [detected.name]
    if not args.layers and detected.name == "bubblewrap":
        layers.append("rlimits")
    runs: dict[str, Callable[[], float]] = {"python3 -c print(1)": bare_python}
    for layer in layers:
        runs |= contenders(layer, args.calls)
    times = interleave(runs, args.repeats, args.warmup)
    med = {name: median(values) for name, values in times.items()}

    report = Report(
        "sandbox_speed",
        {
            "layers": ", ".join(layers),
            "detected": f"{detected.name} ({detected.reason})",
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
            "warm calls per round": args.calls,
        },
    )
    report.table(
        ["contender", "median ms", "min ms", "max ms"],
        [
            [name, f"{med[name] * 1e3:.2f}", f"{min(v) * 1e3:.2f}", f"{max(v) * 1e3:.2f}"]
            for name, v in times.items()
        ],
    )
    base = med["python3 -c print(1)"]
    for layer in layers:
        warm, cold = med[f"{layer}: warm print(1)"], med[f"{layer}: cold start"]
        report.ratio(f"{layer}: warm round trip (ms)", warm * 1e3, f"<= {WARM_TARGET_MS}")
        report.ratio(f"{layer}: warm / python3 -c print(1)", warm / base)
        report.ratio(f"{layer}: cold start (ms)", cold * 1e3, f"<= {COLD_TARGET_MS}")
        report.ratio(f"{layer}: cold start / python3 -c print(1)", cold / base)
        imports = med[f"{layer}: cold + import numpy, sympy"]
        report.ratio(f"{layer}: cold + import numpy, sympy (ms)", imports * 1e3)
    report.results = {"seconds": times, "median_s": med}
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
