"""Time to the first token in a new process with tools on (or a long system prompt),
against the same question without, side by side: what the prefix library buys.

Contenders, each a fresh `qwenchat ask --json --max-tokens 1` process (the figure is
the reply's ``timings.ttft_s``; loading the model is not in it), interleaved, each
run asking another question ("What is 17 + N?") so that only the shared start can come
from the cache:

  plain        no tools, the default system prompt
  tools        --tools (the tools block, ~600 tokens), the cache warmed by a run before
  tools-cold   --tools with an empty cache every run (what the first run ever costs)
  persona      --system <a ~1,000-token character sheet>, warmed
  tui          `qwenchat chat --tools` in a real terminal (tmux), a new session in a
               new process: the TTFT its status bar shows

Targets: tools / plain and persona / plain and tui / plain <= 1.5.

    .venv/bin/python bench/ttft_prefix.py [--model test|eval|PATH] [--repeats 5]
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from itertools import count
from pathlib import Path

from _common import (
    BENCH_DIR,
    QWENCHAT,
    BenchError,
    Report,
    clean_env,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run_json,
)

sys.path.insert(0, str(BENCH_DIR.parent))
from tests.terminal import TerminalError, Tmux

TARGET = "<= 1.5"
TTFT = re.compile(r"TTFT ([\d.]+) s")
SHEET = " ".join(
    f"Captain Mira Vance commands the survey ship Halcyon, fact {i}: she keeps a log of"
    f" every star system visited, values her crew, and speaks in short, dry sentences."
    for i in range(40)
)


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    args = parse(cli)
    path = model_path(args.model)
    threads = ["--threads", str(args.threads)] if args.threads else []
    scratch = Path(tempfile.mkdtemp(prefix="qwenchat-ttft-prefix-"))
    questions = count(1)

    def ask(*flags: str, cold: bool = False) -> float:
        cache = scratch / ("cold" if cold else "warm")
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        env = {**clean_env(), "QWENCHAT_CACHE_DIR": str(cache)}
        question = f"What is 17 + {next(questions)}?"
        cmd = [QWENCHAT, "ask", "--json", "--max-tokens", "1", "-m", str(path), *threads]
        out = run_json([*cmd, *flags, question], env=env)
        return float(out["timings"]["ttft_s"])

    def tui() -> float:
        env = {**clean_env(), "QWENCHAT_CACHE_DIR": str(scratch / "warm")}
        env["QWENCHAT_DATA_DIR"] = str(scratch / f"data-{next(questions)}")
        command = [QWENCHAT, "chat", "--tools", "-m", str(path), *threads]
        with Tmux(command, env=env, width=160) as term:
            term.wait_for("ctx ", timeout=120)
            term.type(f"What is 17 + {next(questions)}?")
            term.keys("Enter")
            try:
                screen = term.wait_for(lambda s: TTFT.search(s) is not None, timeout=300, poll=0.5)
            except TerminalError as exc:
                raise BenchError(str(exc)) from None
        found = TTFT.search(screen)
        assert found is not None
        return float(found[1])

    runs = interleave(
        {
            "plain": lambda: ask(),
            "tools": lambda: ask("--tools"),
            "tools-cold": lambda: ask("--tools", cold=True),
            "persona": lambda: ask("--system", SHEET),
            "tui": tui,
        },
        args.repeats,
        args.warmup,
    )
    med = {name: median(values) for name, values in runs.items()}
    report = Report(
        "ttft_prefix",
        {
            "model": path.name,
            "threads": args.threads or "qwenchat's default",
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
        results={"runs": runs, "median": med},
    )
    report.table(
        ["contender", "median TTFT s", "runs"],
        [[name, f"{med[name]:.3f}", " ".join(f"{v:.2f}" for v in rs)] for name, rs in runs.items()],
    )
    report.ratio("tools / plain (warm cache)", med["tools"] / med["plain"], TARGET)
    report.ratio("persona / plain (warm cache)", med["persona"] / med["plain"], TARGET)
    report.ratio("tui with tools / plain", med["tui"] / med["plain"], TARGET)
    report.ratio("tools-cold / plain (the first run ever)", med["tools-cold"] / med["plain"])
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
