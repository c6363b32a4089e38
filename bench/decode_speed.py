"""Decode speed of `qwenchat ask` against bare llama-cpp-python loops, side by side.

Three contenders, each in a fresh process per run, interleaved (a, b, c, a, b, c...),
on the same model, ChatML prompt (one user message, the default system prompt),
greedy sampling (temperature 0, top_k 20, top_p 0.8, min_p 0, repeat penalty
1.05: qwenchat's defaults, pinned by an empty config dir), seed 1, threads (--threads,
default all CPUs this process may use), n_ctx and GPU layers (qwenchat's "auto" rule):

  a  qwenchat     `qwenchat ask --json ...`, its reported decode_tokens_per_s
  b  generate     bare `Llama.generate` + per-token `detokenize` (the baseline loop,
                  bench/_bare_decode.py)
  c  completion   bare `Llama.create_completion(prompt, stream=True)`

Decode tokens/s is (sampled tokens - 1) / (time of last token - time of first),
an end-of-generation token counted when sampled, for all three. Reported: the
median of each, a/b against the target (>= 0.97) and b/c (whether generate with
per-token detokenization beats create_completion). Greedy decoding must give
all three the same tokens: a warning says when counts or texts differ.

    .venv/bin/python bench/decode_speed.py [--model PATH|test|eval] [--repeats 5]
        [--tokens 256] [--n-ctx 4096] [--threads N] [--warmup 1] [--json]
"""

from __future__ import annotations

import json
import sys

from _common import (
    BENCH_DIR,
    QWENCHAT,
    Report,
    chatml_prompt,
    cpu_threads,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run_json,
)

PROMPT = (
    "Write a long story about a dragon who learns to program computers. "
    "Tell it in many chapters, with plenty of detail and dialogue."
)
TARGET = ">= 0.97"
SEED = 1
NAMES = {
    "qwenchat": "a  qwenchat ask --json",
    "generate": "b  bare generate + detokenize",
    "completion": "c  bare create_completion(stream)",
}


def main() -> None:
    cli = parser(__doc__, repeats=5, warmup=1)
    cli.add_argument("--tokens", type=int, default=256, help="max tokens to decode (default 256)")
    cli.add_argument("--n-ctx", type=int, default=4096, help="context window (default 4096)")
    args = parse(cli)

    from qwenchat.config import Sampling

    path = model_path(args.model)
    threads = args.threads or cpu_threads()
    sampling = Sampling()  # qwenchat's defaults, as `ask` uses them with an empty config
    bare_cfg = {
        "model": str(path),
        "prompt": chatml_prompt(PROMPT),
        "max_tokens": args.tokens,
        "threads": threads,
        "n_ctx": args.n_ctx,
        "gpu_layers": "auto",
        "seed": SEED,
        "sampling": {
            "top_k": sampling.top_k,
            "top_p": sampling.top_p,
            "repeat_penalty": sampling.repeat_penalty,
        },
    }
    ask = [QWENCHAT, "ask", "--json", "-m", str(path), "--temperature", "0"]
    ask += ["--seed", str(SEED), "--max-tokens", str(args.tokens), "--threads", str(threads)]
    ask += ["--n-ctx", str(args.n_ctx), "--gpu-layers", "auto", PROMPT]

    def qwenchat() -> dict:
        out = run_json(ask)
        tokens = out["usage"]["completion_tokens"]
        stopped = tokens < args.tokens  # ended on an end-of-generation token
        return {
            "rate": out["timings"]["decode_tokens_per_s"],
            "sampled": tokens + stopped,
            "completion_tokens": tokens,
            "finish": "stop" if stopped else "length",
            "prompt_tokens": out["usage"]["prompt_tokens"],
            "text": out["text"],
        }

    def bare(mode: str) -> dict:
        cfg = json.dumps({**bare_cfg, "mode": mode})
        return run_json([sys.executable, str(BENCH_DIR / "_bare_decode.py"), cfg])

    runs = interleave(
        {
            "qwenchat": qwenchat,
            "generate": lambda: bare("generate"),
            "completion": lambda: bare("completion"),
        },
        args.repeats,
        args.warmup,
    )

    rates = {name: [r["rate"] for r in rs] for name, rs in runs.items()}
    med = {name: median(v) for name, v in rates.items()}
    report = Report(
        "decode_speed",
        {
            "model": path.name,
            "threads": threads,
            "n_ctx": args.n_ctx,
            "max tokens": args.tokens,
            "sampling": f"greedy (top_k {sampling.top_k}, top_p {sampling.top_p}, min_p 0, "
            f"repeat_penalty {sampling.repeat_penalty}), seed {SEED}",
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
    )
    report.table(
        ["contender", "median tok/s", "min", "max", "tokens", "finish", "runs (tok/s)"],
        [
            [
                NAMES[name],
                f"{med[name]:.2f}",
                f"{min(rates[name]):.2f}",
                f"{max(rates[name]):.2f}",
                "/".join(sorted({str(r["completion_tokens"]) for r in rs})),
                "/".join(sorted({r["finish"] for r in rs})),
                " ".join(f"{v:.2f}" for v in rates[name]),
            ]
            for name, rs in runs.items()
        ],
    )
    report.ratio("a/b  qwenchat / bare generate", _div(med["qwenchat"], med["generate"]), TARGET)
    report.ratio("b/c  generate / create_completion", _div(med["generate"], med["completion"]))
    report.results = {
        "tokens_per_s": rates,
        "median_tokens_per_s": med,
        "completion_tokens": {n: [r["completion_tokens"] for r in rs] for n, rs in runs.items()},
        "prompt_tokens": {n: [r["prompt_tokens"] for r in rs] for n, rs in runs.items()},
        "finish": {n: [r["finish"] for r in rs] for n, rs in runs.items()},
    }

    counts = {n: {r["completion_tokens"] for r in rs} for n, rs in runs.items()}
    if len(set().union(*counts.values())) > 1:
        report.warn(f"the contenders produced different numbers of tokens: {counts}")
    texts = {n: {r["text"] for r in rs} for n, rs in runs.items()}
    if len(set().union(*texts.values())) > 1:
        report.warn("the contenders' texts differ, though decoding was greedy")
    prompts = {n: {r["prompt_tokens"] for r in rs} for n, rs in runs.items()}
    if len(set().union(*prompts.values())) > 1:
        report.warn(f"the prompts differ in length (tokens): {prompts}")
    if any(r["finish"] == "stop" for rs in runs.values() for r in rs):
        report.note("a run ended on an end-of-generation token before max tokens")
    report.emit(args.json)


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


if __name__ == "__main__":
    main_guard(main)
