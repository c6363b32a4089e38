"""Prompt and decode speed of two llama.cpp builds and both ways of loading, side by side.

The AMX issue's comparison: (a) qwenchat's build (AMX compiled out by
cmake/llama-no-amx.cmake) loading as usual, with llama.cpp's extra buffer types
(the CPU_REPACK weight layout), against (b) the build qwenchat made before (a plain
GGML_NATIVE=ON build, given by ``--other-python``, the interpreter of a venv that
has it) loaded as the AMX guard loads a build with AMX: extra buffer types off.
Each build also runs the other way, so the table separates what the build changes
from what the buffer types change:

  a      this build, extra buffer types on    (qwenchat's default here)
  a-off  this build, extra buffer types off
  b      other build, extra buffer types off  (the guard on the old build)
  b-on   other build, extra buffer types on

Each run is a fresh process (bench/_bare_build.py), interleaved, on the same model
and threads: prompt evaluation of the first --prompt tokens of docs/architecture.md
in batches of 512, then --decode greedy tokens one at a time. Reported: median
tokens/s of each, whether CPU_REPACK held the weights (llama.cpp's load log), each
build's llama_print_system_info(), and a/b for prompt and decode. Without
--other-python, "other" is this build too (the guard's cost on one build).

Runs in separate processes differ by several percent on a shared VM; --paired N
also loads each build's model both ways in one process and alternates them N
rounds, which measures what the buffer types alone change more tightly.

    .venv/bin/python bench/llama_build.py [--other-python /tmp/old/bin/python]
        [--model PATH|test|eval] [--prompt 512] [--decode 128] [--repeats 5]
        [--paired 0] [--json]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from _common import (
    BENCH_DIR,
    Crashed,
    Report,
    cpu_threads,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run_json,
)

NAMES = {
    "a": "a      this build, extra buffers on",
    "a-off": "a-off  this build, extra buffers off",
    "b": "b      other build, extra buffers off",
    "b-on": "b-on   other build, extra buffers on",
}


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    cli.add_argument(
        "--other-python",
        default=sys.executable,
        help="the interpreter of the other build's venv (default: this one)",
    )
    cli.add_argument("--prompt", type=int, default=512, help="prompt tokens (default 512)")
    cli.add_argument("--decode", type=int, default=128, help="decoded tokens (default 128)")
    cli.add_argument(
        "--paired",
        type=int,
        default=0,
        help="also measure each build's two loads in one process, alternating, this many"
        " rounds (machine drift between processes cancels out; default 0: not run)",
    )
    args = parse(cli)

    path = model_path(args.model)
    threads = args.threads or cpu_threads()
    base = {
        "model": str(path),
        "threads": threads,
        "prompt_tokens": args.prompt,
        "decode_tokens": args.decode,
    }
    script = str(BENCH_DIR / "_bare_build.py")

    def child(python: str, loads: list[bool], rounds: int = 1) -> dict:
        cfg = {**base, "extra_buffers": loads, "rounds": rounds}
        return run_json([python, script, json.dumps(cfg)])

    crashed: dict[tuple[str, bool], str] = {}

    def contender(python: str, extra: bool) -> dict:
        """One run, or ``{"crashed": "SIGSEGV"}``: a build that crashes on this CPU (the
        AMX build with extra buffers on) is a result, and is not run again."""
        if (python, extra) in crashed:
            return {"crashed": crashed[python, extra]}
        try:
            out = child(python, [extra])
        except Crashed as exc:
            crashed[python, extra] = exc.signal_name
            return {"crashed": exc.signal_name}
        [load] = out["loads"]
        return {**load["runs"][0], "repack": load["repack"], "system_info": out["system_info"]}

    runs = interleave(
        {
            "a": lambda: contender(sys.executable, True),
            "a-off": lambda: contender(sys.executable, False),
            "b": lambda: contender(args.other_python, False),
            "b-on": lambda: contender(args.other_python, True),
        },
        args.repeats,
        args.warmup,
    )
    ran = {name: [r for r in rs if "crashed" not in r] for name, rs in runs.items()}
    pp = {name: median([r["pp"] for r in rs]) for name, rs in ran.items() if rs}
    tg = {name: median([r["tg"] for r in rs]) for name, rs in ran.items() if rs}
    report = Report(
        "llama_build",
        {
            "model": path.name,
            "threads": threads,
            "prompt": args.prompt,
            "decode": args.decode,
            "other": args.other_python,
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
        results={"runs": runs, "pp_median": pp, "tg_median": tg},
    )
    report.table(
        ["contender", "prompt tok/s", "decode tok/s", "CPU_REPACK", "decode runs (tok/s)"],
        [_row(name, rs, runs[name]) for name, rs in ran.items()],
    )
    for name in ("a", "b"):
        if ran[name]:
            report.note(f"system info of {name}: {ran[name][0]['system_info']}")
    texts = {r["text"] for rs in ran.values() for r in rs}
    for label, x, y in (("a/b", "a", "b"), ("a/a-off (repack's gain)", "a", "a-off")):
        if x in pp and y in pp:
            report.ratio(f"prompt {label}", pp[x] / pp[y])
            report.ratio(f"decode {label}", tg[x] / tg[y])
    if args.paired:
        builds = {"a": sys.executable, "b": args.other_python}
        texts |= paired(report, child, builds, args.paired, crashed)
    if len(texts) > 1:
        report.warn(f"greedy decoding differs between contenders: {sorted(texts)!r}")
    report.emit(args.json)


def _row(name: str, ran: list[dict], runs: list[dict]) -> list[str]:
    if not ran:
        return [NAMES[name], f"crashed ({runs[0]['crashed']})", "-", "-", "-"]
    return [
        NAMES[name],
        f"{median([r['pp'] for r in ran]):.1f}",
        f"{median([r['tg'] for r in ran]):.2f}",
        "/".join(sorted({"yes" if r["repack"] else "no" for r in ran})),
        " ".join(f"{r['tg']:.2f}" for r in ran),
    ]


def paired(
    report: Report,
    child: Callable[..., dict],
    builds: dict[str, str],
    rounds: int,
    crashed: dict[tuple[str, bool], str],
) -> set:
    """Each build's extra-buffers-on and -off loads in one process, alternating; returns
    the decoded texts seen. A build that crashed with either load is left out."""
    rows, texts = [], set()
    for name, python in builds.items():
        if (python, True) in crashed or (python, False) in crashed:
            report.note(f"paired {name}: left out, it crashed on this CPU")
            continue
        on, off = child(python, [True, False], rounds)["loads"]
        med = {
            key: [median([r[key] for r in load["runs"]]) for load in (on, off)]
            for key in ("pp", "tg")
        }
        rows.append([name, *(f"{v:.1f}" for v in med["pp"]), *(f"{v:.2f}" for v in med["tg"])])
        report.ratio(f"paired {name}: prompt on/off", med["pp"][0] / med["pp"][1])
        report.ratio(f"paired {name}: decode on/off", med["tg"][0] / med["tg"][1])
        report.results[f"paired_{name}"] = {"on": on, "off": off}
        texts |= {r["text"] for load in (on, off) for r in load["runs"]}
    report.table(
        [f"paired, {rounds} rounds", "prompt on", "prompt off", "decode on", "decode off"], rows
    )
    return texts


if __name__ == "__main__":
    main_guard(main)
