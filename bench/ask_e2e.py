"""`qwenchat ask` end to end against a bare llama-cpp-python script, for a one-word answer.

Both are fresh processes, interleaved, timed from start to exit: qwenchat's run
includes its config loading, model resolution, GGUF header check and tokenization;
the bare script loads the same model (same n_ctx 8192, threads, verbose=False)
and answers the same ChatML prompt greedily. The model file is assembled before
timing. Target: qwenchat / bare <= 1.2.

    .venv/bin/python bench/ask_e2e.py [--model PATH] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from _common import QWENCHAT, interleave, median, model_path, verdict, wall_time

PROMPT = "What is the capital of France? Answer with one word."

BARE = r"""
import sys
import llama_cpp
from qwenchat.chatml import render
path, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
prompt = llm.tokenize(render([{"role": "user", "content": sys.argv[3]}]).encode(), add_bos=False, special=True)
eog = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
out = []
for token in llm.generate(prompt, temp=0.0, top_k=20, top_p=0.8, min_p=0.0, repeat_penalty=1.05):
    if token in eog or len(out) >= 8:
        break
    out.append(token)
print(llm.detokenize(out).decode())
"""


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--model", type=Path)
    cli.add_argument("--repeats", type=int, default=5)
    args = cli.parse_args()
    path = model_path(args.model)
    threads = str(len(os.sched_getaffinity(0)))
    ask = [
        QWENCHAT,
        "ask",
        "-m",
        str(path),
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--threads",
        threads,
        PROMPT,
    ]
    bare = [sys.executable, "-c", BARE, str(path), threads, PROMPT]
    times = interleave(
        {
            "qwenchat ask": lambda: wall_time(ask, stdin=subprocess.DEVNULL),
            "bare script": lambda: wall_time(bare),
        },
        args.repeats,
    )
    for name, values in times.items():
        print(
            f"{name:13} median {median(values):.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})"
        )
    ratio = median(times["qwenchat ask"]) / median(times["bare script"])
    print(
        f"model: {path.name}; qwenchat ask / bare: {ratio:.3f}  (target <= 1.2: {verdict(ratio <= 1.2)})"
    )


if __name__ == "__main__":
    main()
