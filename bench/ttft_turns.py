"""Time to first token across the turns of one conversation: KV reuse against re-evaluation.

Ten turns with user messages of equal length (greedy replies of up to 40
tokens). qwenchat keeps the KV cache, so each turn evaluates only its new
message; the baseline clears the cache before each turn, as an implementation
that re-renders and re-evaluates the whole history would. Both run in this
process on one loaded model, alternating turn by turn.
Target: qwenchat's turn 10 / turn 1 time to first token <= 1.5.

    .venv/bin/python bench/ttft_turns.py [--model PATH] [--turns 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import model_path, verdict

from qwenchat.chat import Chat
from qwenchat.chatml import Segment
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine


def message(i: int) -> str:
    return f"Tell me one short fact about {TOPICS[i % len(TOPICS)]}. Use one sentence only."


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--model", type=Path)
    cli.add_argument("--turns", type=int, default=10)
    args = cli.parse_args()
    path = model_path(args.model)
    chats = {}
    for name in ("qwenchat", "re-evaluate"):
        engine = LlamaEngine(path, n_ctx=8192)
        Chat(settings=Settings(), engine=engine, max_tokens=4).send("Hi")  # warm up llama.cpp
        engine._llm.reset()
        chats[name] = Chat(settings=Settings(), engine=engine, temperature=0, max_tokens=40)
    lengths = {
        chats["qwenchat"].engine.count_tokens([Segment(message(i), False)])
        for i in range(args.turns)
    }
    ttft: dict[str, list[float]] = {name: [] for name in chats}
    history: dict[str, list[int]] = {name: [] for name in chats}
    for i in range(args.turns):
        for name, chat in chats.items():
            if name == "re-evaluate":  # drop the KV cache and the kept reply ids
                chat.engine._llm.reset()
                chat.engine._replies.clear()
            reply = chat.send(message(i))
            ttft[name].append(reply.timings.ttft_s)
            history[name].append(reply.usage.prompt_tokens)
    print(f"model: {path.name}; {args.turns} turns; user messages of {sorted(lengths)} tokens")
    print(f"{'turn':>4} {'prompt tok':>10} {'qwenchat ttft':>14} {'re-evaluate ttft':>17}")
    for i in range(args.turns):
        print(
            f"{i + 1:>4} {history['qwenchat'][i]:>10} {ttft['qwenchat'][i] * 1e3:>11.0f} ms"
            f" {ttft['re-evaluate'][i] * 1e3:>14.0f} ms"
        )
    ratio = ttft["qwenchat"][-1] / ttft["qwenchat"][0]
    base = ttft["re-evaluate"][-1] / ttft["re-evaluate"][0]
    print(
        f"turn {args.turns} / turn 1: qwenchat {ratio:.2f}x (target <= 1.5: {verdict(ratio <= 1.5)}); "
        f"re-evaluating {base:.2f}x"
    )


if __name__ == "__main__":
    main()
