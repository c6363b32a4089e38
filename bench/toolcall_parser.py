"""Tool-call parser cost per token against the model's decode time per token.

Generates real replies with the test model (greedy): one plain answer, one
tool call in tags. Their token deltas are then fed through the parser many
times; the per-delta parser cost is compared with the per-token decode time
measured in the same run. Target: the parser adds < 1 % to decode time.

    .venv/bin/python bench/toolcall_parser.py [--model PATH] [--repeats 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _common import model_path

from qwenchat.chatml import UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine
from qwenchat.toolcall import ToolCallParser
from qwenchat.tools import load_tools

REPO = Path(__file__).resolve().parents[1]
PROMPTS = {
    "prose": "Explain in detail how a hash map works, with an example in Python.",
    "tool call": "What is 123456789 times 987654321? Use the calculator tool.",
}


def parse_seconds_per_delta(deltas: list[str], known: list[str], repeats: int) -> float:
    parser = ToolCallParser(known)
    start = time.perf_counter()
    for _ in range(repeats):
        for delta in deltas:
            parser.feed(delta)
        parser.finish()
    return (time.perf_counter() - start) / (repeats * len(deltas))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--model", default="test", help="a GGUF path, or test / eval (default: test)")
    cli.add_argument("--repeats", type=int, default=200)
    args = cli.parse_args()
    path = model_path(args.model)
    engine = LlamaEngine(path, n_ctx=4096)
    tools = load_tools([REPO / "tools"]).registry
    known = tools.names()
    print(f"model: {path.name}; parser fed each reply {args.repeats} times")
    print(
        f"{'reply':10} {'deltas':>6} {'decode ms/tok':>13} {'parser us/delta':>15} {'overhead':>9}"
    )
    worst = 0.0
    for label, prompt in PROMPTS.items():
        segments = render_segments([UserMessage(content=prompt)], tools=tools.specs())
        generation = engine.generate(segments, Sampling(temperature=0.0, max_tokens=256))
        deltas = list(generation)
        result = generation.result
        assert result is not None
        decode = 1.0 / result.timings.decode_tokens_per_s
        parse = statistics.median(
            parse_seconds_per_delta(deltas, known, args.repeats) for _ in range(5)
        )
        overhead = parse / decode
        worst = max(worst, overhead)
        print(
            f"{label:10} {len(deltas):>6} {decode * 1e3:>13.2f} {parse * 1e6:>15.2f}"
            f" {overhead:>9.4%}"
        )
    verdict = "PASS" if worst < 0.01 else "FAIL"
    print(f"worst overhead {worst:.4%} of decode time; target < 1%: {verdict}")


if __name__ == "__main__":
    main()
