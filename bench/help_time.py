"""Wall time of `qwenchat --help` against `python -c pass`, interleaved.

Both run as fresh processes, A/B/A/B, after --warmup untimed rounds (byte-code
caches written, files in the page cache): `qwenchat --help` is the console script
installed next to this interpreter (.venv/bin/qwenchat), `python -c pass` is
this interpreter starting and exiting, the floor of any Python command. Both get
an empty qwenchat config dir. Reported: medians, the ratio and the difference
(qwenchat's own start-up cost). Target: `qwenchat --help` median < 0.3 s.

    .venv/bin/python bench/help_time.py [--repeats 10] [--warmup 1] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import QWENCHAT, BenchError, Report, interleave, main_guard, median, parse, parser, run

TARGET_S = 0.3


def main() -> None:
    args = parse(parser(__doc__, repeats=10, warmup=1, model=False))
    if not Path(QWENCHAT).is_file():
        raise BenchError(f"no console script at {QWENCHAT}: install qwenchat into this venv")
    names = {
        "qwenchat --help": [QWENCHAT, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    times = interleave(
        {name: (lambda cmd=cmd: run(cmd)[0]) for name, cmd in names.items()},
        args.repeats,
        args.warmup,
    )
    med = {name: median(values) for name, values in times.items()}
    report = Report(
        "help_time",
        {
            "qwenchat": QWENCHAT,
            "python": sys.executable,
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
    )
    report.table(
        ["command", "median ms", "min ms", "max ms", "runs (ms)"],
        [
            [
                name,
                f"{med[name] * 1e3:.1f}",
                f"{min(v) * 1e3:.1f}",
                f"{max(v) * 1e3:.1f}",
                " ".join(f"{x * 1e3:.0f}" for x in v),
            ]
            for name, v in times.items()
        ],
    )
    help_s, base_s = med["qwenchat --help"], med["python -c pass"]
    report.ratio("qwenchat --help median (s)", help_s, f"< {TARGET_S}")
    report.ratio("qwenchat --help / python -c pass", help_s / base_s)
    report.ratio("qwenchat --help - python -c pass (s)", help_s - base_s)
    report.results = {"seconds": times, "median_s": med}
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
