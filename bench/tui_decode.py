"""Decode speed inside the TUI against `qwenchat ask`, side by side, same reply.

Both sides run in fresh processes, interleaved (the order rotates each round), on
the same model, prompt, seed and greedy sampling (a config file sets temperature 0,
the seed and max_tokens), with qwenchat's default threads (or --threads for both):

  a  tui   `qwenchat chat` in a real terminal (a tmux pane): the prompt is typed,
           Enter pressed, and the reply's footer read off the screen when it ends
  b  ask   `qwenchat ask --json`, its reported decode tokens/s

Decode tokens/s is what the engine reports for the reply (tokens after the first,
over the time since the first), shown by the TUI with one decimal. The TUI draws
the reply while it decodes (a redraw every 1/10 s, in the same process); that cost
is what this measures. Target: a/b >= 0.9. A warning says when the two sides did
not write the same number of tokens (they should: greedy, same seed).

    .venv/bin/python bench/tui_decode.py [--model PATH|test|eval] [--repeats 5]
        [--tokens 256] [--threads N] [--warmup 1] [--json]
"""

from __future__ import annotations

import re
import sys
import tempfile
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

PROMPT = (
    "Write a long story about a dragon who learns to program computers. "
    "Tell it in many chapters, with plenty of detail and dialogue."
)
TARGET = ">= 0.9"
SEED = 1
FOOTER = re.compile(r"(\d+) tokens · ([\d.]+) tok/s · first token ([\d.]+) s")


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    cli.add_argument("--tokens", type=int, default=256, help="max tokens to decode (default 256)")
    args = parse(cli)
    path = model_path(args.model)
    scratch = Path(tempfile.mkdtemp(prefix="qwenchat-tui-decode-"))
    config = scratch / "config"
    config.mkdir()
    (config / "config.toml").write_text(
        f"[sampling]\ntemperature = 0\nseed = {SEED}\nmax_tokens = {args.tokens}\n",
        encoding="utf-8",
    )
    env = {**clean_env(), "QWENCHAT_CONFIG_DIR": str(config)}
    threads = ["--threads", str(args.threads)] if args.threads else []
    rounds = iter(range(10**6))

    def tui() -> dict:
        # A data dir per run: every run starts a new session in an empty store.
        data = scratch / f"data-{next(rounds)}"
        command = [QWENCHAT, "chat", "-m", str(path), *threads]
        with Tmux(command, env={**env, "QWENCHAT_DATA_DIR": str(data)}, width=120) as term:
            term.wait_for("ctx ", timeout=120)
            term.type(PROMPT)
            term.keys("Enter")
            try:
                # Read the screen once a second: tmux's default 10 ms polling starts 100
                # tmux clients a second, which took a fifth of the decode speed.
                screen = term.wait_for(
                    lambda s: FOOTER.search(s) is not None, timeout=600, poll=1.0
                )
            except TerminalError as exc:
                raise BenchError(str(exc)) from None
        found = FOOTER.search(screen)
        assert found is not None
        return {"rate": float(found[2]), "tokens": int(found[1])}

    def ask() -> dict:
        cmd = [QWENCHAT, "ask", "--json", "-m", str(path), *threads, PROMPT]
        out = run_json(cmd, env=env)
        return {
            "rate": out["timings"]["decode_tokens_per_s"],
            "tokens": out["usage"]["completion_tokens"],
        }

    runs = interleave({"tui": tui, "ask": ask}, args.repeats, args.warmup)
    rates = {name: [r["rate"] for r in rs] for name, rs in runs.items()}
    med = {name: median(v) for name, v in rates.items()}
    report = Report(
        "tui_decode",
        {
            "model": path.name,
            "threads": args.threads or "qwenchat's default",
            "max tokens": args.tokens,
            "sampling": f"greedy, seed {SEED}",
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
    )
    report.table(
        ["contender", "median tok/s", "min", "max", "tokens", "runs (tok/s)"],
        [
            [
                {"tui": "a  qwenchat chat (TUI, tmux)", "ask": "b  qwenchat ask --json"}[name],
                f"{med[name]:.2f}",
                f"{min(rates[name]):.2f}",
                f"{max(rates[name]):.2f}",
                "/".join(sorted({str(r["tokens"]) for r in rs})),
                " ".join(f"{v:.1f}" for v in rates[name]),
            ]
            for name, rs in runs.items()
        ],
    )
    if {r["tokens"] for rs in runs.values() for r in rs} != {runs["ask"][0]["tokens"]}:
        report.warn("the TUI and ask wrote different numbers of tokens")
    report.ratio("a/b  TUI / ask decode tokens/s", med["tui"] / med["ask"], TARGET)
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
