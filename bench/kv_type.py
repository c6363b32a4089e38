"""The KV cache's number type (engine.kv_type): memory per token and decode speed with a
long context, f16 against q8_0 (and q4_0), side by side in fresh processes.

Each run loads the model with the type, reads a prompt of --context tokens (the start of
the repository's docs, repeated), then decodes --decode tokens greedily; reported: the
KV state's bytes per token (llama.cpp's own count for the sequence), the prompt and
decode speeds, and q8_0/f16 for each. Targets: q8_0 memory per token about half of
f16's, decode >= 0.95 x f16. ``--long N`` also loads the model with an N-token window in
q8_0 and reads a prompt that nearly fills it (the 32K check on the 1.5B model).

    .venv/bin/python bench/kv_type.py [--model test|eval] [--context 4096] [--decode 64]
        [--types f16,q8_0,q4_0] [--repeats 3] [--long 32768]
"""

from __future__ import annotations

import json
import sys

from _common import (
    BENCH_DIR,
    Report,
    clean_env,
    cpu_threads,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
    run_json,
)

CHILD = r"""
import ctypes, json, sys, time
from pathlib import Path
import llama_cpp
sys.path.insert(0, sys.argv[2])
from qwenchat.chatml import UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine
cfg = json.loads(sys.argv[1])
engine = LlamaEngine(Path(cfg["model"]), n_ctx=cfg["n_ctx"], threads=cfg["threads"],
                     gpu_layers=0, kv_type=cfg["kv_type"])
docs = "\n".join(p.read_text() for p in sorted(Path(sys.argv[2], "docs").glob("*.md")))
words = docs.split()
text = []
while engine.count_tokens(render_segments([UserMessage(content=" ".join(text))])) < cfg["context"]:
    text += words[: max(200, (cfg["context"] // 2))]
while engine.count_tokens(render_segments([UserMessage(content=" ".join(text))])) > cfg["context"]:
    text = text[:-50]
ask = " ".join(text) + "\n\nSummarise the above in detail."
prompt = render_segments([UserMessage(content=ask)])
g = engine.generate(prompt, Sampling(temperature=0, max_tokens=cfg["decode"]))
reply = "".join(g)
ctx = engine._llm._ctx.ctx
tokens = engine._llm.n_tokens
size = llama_cpp.llama_state_seq_get_size(ctx, 0)
print(json.dumps({"prompt_tokens": g.result.usage.prompt_tokens,
                  "pp": g.result.usage.prompt_tokens / g.result.timings.ttft_s,
                  "tg": g.result.timings.decode_tokens_per_s,
                  "decoded": g.result.usage.completion_tokens,
                  "bytes_per_token": size / tokens, "reply": reply[:80]}))
"""


def main() -> None:
    cli = parser(__doc__, repeats=3, warmup=0)
    cli.add_argument("--context", type=int, default=4096, help="prompt tokens (default 4096)")
    cli.add_argument("--decode", type=int, default=64, help="decoded tokens (default 64)")
    cli.add_argument("--types", default="f16,q8_0", help="comma-separated (default f16,q8_0)")
    cli.add_argument("--long", type=int, default=0, help="also a q8_0 window of N tokens")
    args = parse(cli)
    path = model_path(args.model)
    threads = args.threads or cpu_threads()

    def child(kv_type: str, context: int, n_ctx: int) -> dict:
        cfg = {"model": str(path), "threads": threads, "kv_type": kv_type,
               "context": context, "decode": args.decode, "n_ctx": n_ctx}  # fmt: skip
        return run_json(
            [sys.executable, "-c", CHILD, json.dumps(cfg), str(BENCH_DIR.parent)], env=clean_env()
        )

    types = args.types.split(",")
    n_ctx = args.context + args.decode + 128
    runs = interleave(
        {t: (lambda t=t: child(t, args.context, n_ctx)) for t in types},  # type: ignore[misc]
        args.repeats,
        args.warmup,
    )
    med = {t: {k: median([r[k] for r in rs]) for k in ("pp", "tg", "bytes_per_token")}
           for t, rs in runs.items()}  # fmt: skip
    report = Report(
        "kv_type",
        {"model": path.name, "threads": threads, "context": args.context,
         "decode": args.decode, "repeats": args.repeats},
        results={"runs": runs},
    )  # fmt: skip
    # A type that loses the thread may end its reply at once: the tokens written say so.
    report.table(
        ["kv_type", "KV bytes/token", "prompt tok/s", "decode tok/s", "decode runs", "written"],
        [[t, f"{m['bytes_per_token']:,.0f}", f"{m['pp']:.1f}", f"{m['tg']:.2f}",
          " ".join(f"{r['tg']:.2f}" for r in runs[t]),
          " ".join(str(r["decoded"]) for r in runs[t])] for t, m in med.items()],
    )  # fmt: skip
    if "f16" in med and "q8_0" in med:
        f16, q8 = med["f16"], med["q8_0"]
        report.ratio("memory per token q8_0/f16", q8["bytes_per_token"] / f16["bytes_per_token"])
        report.ratio("decode q8_0/f16", q8["tg"] / f16["tg"], ">= 0.95")
        report.ratio("prompt q8_0/f16", q8["pp"] / f16["pp"])
    if args.long:
        long = child("q8_0", args.long - args.decode - 256, args.long)
        report.results["long"] = long
        report.note(
            f"a {args.long:,}-token window in q8_0: read {long['prompt_tokens']:,} tokens at"
            f" {long['pp']:.1f} tok/s, then wrote {long['decoded']} at {long['tg']:.2f} tok/s:"
            f" {long['reply']!r}"
        )
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
