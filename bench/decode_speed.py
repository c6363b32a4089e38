"""Decode speed of `qwenchat ask` against bare llama-cpp-python loops, side by side.

Three contenders, each a fresh process per run, interleaved, on the same model,
ChatML prompt, greedy sampling (top_k 20, top_p 0.8, repeat penalty 1.05),
thread count and context size:

- qwenchat: `qwenchat ask --json`, its reported decode tokens/s;
- generate: a bare `Llama.generate` loop with per-token detokenize (the baseline);
- completion: a bare `Llama.create_completion(stream=True)` loop.

Decode tokens/s is (sampled tokens - 1) / (last token time - first token time)
for all three. Target: qwenchat / generate >= 0.97.

    .venv/bin/python bench/decode_speed.py [--model PATH] [--repeats 5] [--tokens 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import QWENCHAT, interleave, median, model_path, verdict

PROMPT = "Write a long story about a dragon who learns to program computers."

BARE = r"""
import json, sys, time
import llama_cpp
from qwenchat.chatml import render
path, mode, n_tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
prompt = llm.tokenize(render([{"role": "user", "content": sys.argv[5]}]).encode(), add_bos=False, special=True)
eog = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
sampling = dict(top_k=20, top_p=0.8, min_p=0.0, repeat_penalty=1.05)
stamps, pieces = [], []
if mode == "generate":
    for token in llm.generate(prompt, temp=0.0, **sampling):
        stamps.append(time.perf_counter())
        if token in eog or len(pieces) >= n_tokens:
            break
        pieces.append(llm.detokenize([token]))
else:
    for chunk in llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, stream=True, **sampling):
        stamps.append(time.perf_counter())
        if chunk["choices"][0]["finish_reason"] is None:  # the last chunk only says why it ended
            pieces.append(chunk["choices"][0]["text"])
rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
print(json.dumps({"rate": rate, "tokens": len(pieces)}))
"""


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--model", type=Path)
    cli.add_argument("--repeats", type=int, default=5)
    cli.add_argument("--tokens", type=int, default=256)
    args = cli.parse_args()
    path = model_path(args.model)
    threads = len(os.sched_getaffinity(0))
    counts: dict[str, int] = {}

    def qwenchat() -> float:
        out = subprocess.run(
            [
                QWENCHAT,
                "ask",
                "--json",
                "-m",
                str(path),
                "--temperature",
                "0",
                "--seed",
                "1",
                "--max-tokens",
                str(args.tokens),
                "--threads",
                str(threads),
                PROMPT,
            ],
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        reply = json.loads(out.stdout)
        counts["qwenchat"] = reply["usage"]["completion_tokens"]
        return reply["timings"]["decode_tokens_per_s"]

    def bare(mode: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", BARE, str(path), mode, str(args.tokens), str(threads), PROMPT],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout)
        counts[mode] = result["tokens"]
        return result["rate"]

    rates = interleave(
        {
            "qwenchat": qwenchat,
            "generate": lambda: bare("generate"),
            "completion": lambda: bare("completion"),
        },
        args.repeats,
    )
    med = {name: median(values) for name, values in rates.items()}
    print(
        f"model: {path.name}; {threads} threads; greedy, up to {args.tokens} tokens; {args.repeats} runs each"
    )
    for name, values in rates.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:10} median {med[name]:6.2f} tok/s  ({counts[name]} tokens; runs: {runs})")
    if len(set(counts.values())) > 1:
        print(f"warning: the contenders produced different token counts: {counts}")
    ratio = med["qwenchat"] / med["generate"]
    print(f"qwenchat / bare generate loop: {ratio:.3f}  (target >= 0.97: {verdict(ratio >= 0.97)})")
    print(
        f"bare generate / create_completion(stream=True): {med['generate'] / med['completion']:.3f}"
    )


if __name__ == "__main__":
    main()
