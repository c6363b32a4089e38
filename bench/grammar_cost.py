"""What a grammar and the call parser cost per decoded token, against free decoding.

Four ways to decode the same JSON-writing prompt on one loaded model, interleaved
round by round so all see the same machine state:

* ``free``: ``Llama.generate`` alone, no grammar (the baseline: llama.cpp's own loop);
* ``parser``: qwenchat's engine (driver, incremental detokenizer) with every delta
  fed to the tool-call parser and the call-opening watch, as the loop does;
* ``top-first``: qwenchat's engine under the schema's grammar (:class:`TopFirst`);
* ``chain``: ``Llama.generate(grammar=...)``, llama-cpp-python's own grammar path,
  which checks the whole vocabulary every token.

Reported: median decode ms per token of each and its cost against ``free``
(target: under 2 % for the parser and the grammar).

    .venv/bin/python bench/grammar_cost.py [--model eval] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import llama_cpp
from _common import model_path

from qwenchat.callgrammar import OpeningWatch
from qwenchat.chatml import UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine
from qwenchat.schema import Schema
from qwenchat.toolcall import ToolCallParser

PROMPT = "Invent three fantasy characters, as JSON."
SCHEMA = Schema.parse(
    json.dumps(
        {
            "type": "object",
            "properties": {
                "characters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "age": {"type": "integer"},
                            "class": {"type": "string"},
                            "items": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["name", "age", "class", "items"],
                    },
                }
            },
            "required": ["characters"],
        }
    )
)


def raw(engine: LlamaEngine, ids: list[int], n: int, **kwargs: object) -> float:
    """ms per token of ``Llama.generate`` from the first token to the last."""
    llm = engine._llm
    stamps = []
    for token in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0, **kwargs):
        stamps.append(time.perf_counter())
        if token in engine._eog or len(stamps) >= n:
            break
    return 1000 * (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def driven(engine: LlamaEngine, prompt: list, n: int, *, grammar: bool, parse: bool) -> float:
    """ms per token of qwenchat's engine (and the loop's parsing when ``parse``)."""
    sampling = Sampling(temperature=0.0, top_k=1, repeat_penalty=1.0, max_tokens=n)
    gen = engine.generate(prompt, sampling, constraint=SCHEMA.constraint if grammar else None)
    parser, watch = ToolCallParser(["get_weather"], bare_json=True), OpeningWatch()
    for delta in gen:
        if parse:
            list(parser.feed(watch.feed(delta)))
    assert gen.result is not None
    return 1000 / gen.result.timings.decode_tokens_per_s


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--model", default="test", help="test, eval, or a GGUF path")
    cli.add_argument("--rounds", type=int, default=5)
    cli.add_argument("--tokens", type=int, default=160)
    cli.add_argument("--json", dest="as_json", action="store_true")
    args = cli.parse_args()
    engine = LlamaEngine(model_path(args.model), n_ctx=2048)
    prompt = render_segments([UserMessage(content=PROMPT)])
    ids = engine.tokenize(prompt)
    chain = llama_cpp.LlamaGrammar.from_string(SCHEMA.constraint.gbnf, verbose=False)
    ways = {
        "free": lambda: raw(engine, ids, args.tokens),
        "parser": lambda: driven(engine, prompt, args.tokens, grammar=False, parse=True),
        "top-first": lambda: driven(engine, prompt, args.tokens, grammar=True, parse=False),
        "chain": lambda: raw(engine, ids, args.tokens, grammar=chain),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for i in range(args.rounds + 1):
        for name, way in ways.items():
            ms = way()
            if i:  # the first round warms the caches
                times[name].append(ms)
        print(
            f"round {i}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items() if v),
            file=sys.stderr,
        )
    median = {name: statistics.median(ms) for name, ms in times.items()}
    cost = {name: median[name] / median["free"] - 1 for name in ways}
    if args.as_json:
        print(json.dumps({"model": engine.model_name, "ms_per_token": median, "cost": cost}))
        return
    print(f"{engine.model_name}, {engine.threads} threads, {args.rounds} rounds, median")
    print("| decoding | ms/token | cost vs free |")
    print("|---|---|---|")
    for name in ways:
        print(f"| {name} | {median[name]:.2f} | {cost[name]:+.1%} |")


if __name__ == "__main__":
    main()
