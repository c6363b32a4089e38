"""Wall time of `qwenchat --help` against `python -c pass`, interleaved.

Target: `qwenchat --help` under 0.3 s.

    .venv/bin/python bench/help_time.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import sys

from _common import QWENCHAT, interleave, median, verdict, wall_time


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--repeats", type=int, default=10)
    args = cli.parse_args()
    times = interleave(
        {
            "qwenchat --help": lambda: wall_time([QWENCHAT, "--help"]),
            "python -c pass": lambda: wall_time([sys.executable, "-c", "pass"]),
        },
        args.repeats,
    )
    for name, values in times.items():
        print(
            f"{name:16} median {median(values) * 1e3:6.1f} ms  (min {min(values) * 1e3:.1f}, max {max(values) * 1e3:.1f})"
        )
    help_s = median(times["qwenchat --help"])
    print(f"ratio to bare python: {help_s / median(times['python -c pass']):.2f}x")
    print(f"qwenchat --help {help_s:.3f} s  (target < 0.3 s: {verdict(help_s < 0.3)})")


if __name__ == "__main__":
    main()
