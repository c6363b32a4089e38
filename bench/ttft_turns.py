"""Time to first token across a conversation's turns: qwenchat's KV reuse against re-evaluation.

One conversation of --turns turns (default 10) through the `Chat` API, in this
process, with user messages of equal length in tokens (~40) and greedy replies of
--reply-tokens tokens (default 40; each asks for a long paragraph, so replies
usually fill it). Two conversations run side by side, turn by turn (A/B/A/B),
each on its own loaded engine (same model file, threads and n_ctx):

  qwenchat     the engine as it is: llama.cpp keeps the KV cache and qwenchat keeps
               its replies' token ids, so a turn evaluates only what is new;
  re-evaluate  the baseline: before each turn the engine's cache state is dropped
               (`engine._llm.reset()`, `engine._replies.clear()`), so every turn
               re-evaluates the whole history, as a re-rendering implementation would.

Each engine first answers one untimed message (llama.cpp's first decode allocates).
--repeats runs the whole pair of conversations again; the table shows medians
per turn. Target: qwenchat's TTFT of the last turn / the first turn <= 1.5.

    .venv/bin/python bench/ttft_turns.py [--model PATH|test|eval] [--turns 10]
        [--reply-tokens 40] [--repeats 3] [--n-ctx N] [--threads N] [--json]
"""

from __future__ import annotations

from collections import Counter

from _common import BenchError, Report, main_guard, median, model_path, parse, parser, progress

TARGET = "<= 1.5"
TEMPLATE = (
    "Turn {n:02d}. Write a detailed paragraph about {topic}: where it comes from, how people "
    "make and use it today, and one surprising fact about it that most readers would not know."
)
TOPICS = [
    *("coffee", "bread", "rice", "salt", "paper", "glass", "silk", "cotton", "honey", "iron"),
    *("copper", "gold", "tea", "sugar", "wool", "rubber", "steel", "clay", "wine", "cheese"),
]
NAMES = ("qwenchat", "re-evaluate")


def messages(engine: object, turns: int) -> tuple[list[str], int]:
    """``turns`` messages, all of the same length in tokens; and that length."""
    from qwenchat.chatml import Segment

    def count(text: str) -> int:
        return engine.count_tokens([Segment(text, False)])  # type: ignore[attr-defined]

    lengths = {t: count(TEMPLATE.format(n=1, topic=t)) for t in TOPICS}
    usual = Counter(lengths.values()).most_common(1)[0][0]
    topics = [t for t in TOPICS if lengths[t] == usual]
    texts = [TEMPLATE.format(n=i + 1, topic=topics[i % len(topics)]) for i in range(turns)]
    if len({count(t) for t in texts}) != 1:
        raise BenchError("could not build user messages of equal length for this tokenizer")
    return texts, usual


def main() -> None:
    cli = parser(__doc__, repeats=3, warmup=1)
    cli.add_argument("--turns", type=int, default=10, help="turns per conversation (default 10)")
    cli.add_argument(
        "--reply-tokens", type=int, default=40, help="max tokens per reply (default 40)"
    )
    cli.add_argument("--n-ctx", type=int, help="context window (default: qwenchat's)")
    args = parse(cli)
    if args.turns < 2:
        cli.error("--turns must be at least 2")

    from qwenchat.chat import Chat
    from qwenchat.config import Settings
    from qwenchat.engine.llama import LlamaEngine

    path = model_path(args.model)
    settings = Settings()  # defaults, whatever the machine's config file says
    engines = {name: LlamaEngine(path, n_ctx=args.n_ctx, threads=args.threads) for name in NAMES}
    texts, msg_tokens = messages(engines["qwenchat"], args.turns)

    def drop_cache(engine: LlamaEngine) -> None:
        engine._llm.reset()
        engine._replies.clear()

    def new_chat(engine: LlamaEngine, max_tokens: int) -> Chat:
        drop_cache(engine)
        return Chat(settings=settings, engine=engine, temperature=0, seed=1, max_tokens=max_tokens)

    for _ in range(args.warmup):
        for name, engine in engines.items():
            progress(f"warm-up: {name}")
            new_chat(engine, 4).send("Hi")

    # per[name][repeat][turn] = {"ttft", "prompt", "cached", "reply", "text"}
    per: dict[str, list[list[dict]]] = {name: [] for name in NAMES}
    for rep in range(args.repeats):
        chats = {name: new_chat(engine, args.reply_tokens) for name, engine in engines.items()}
        for name in NAMES:
            per[name].append([])
        for i, text in enumerate(texts):
            for name, chat in chats.items():
                progress(f"run {rep + 1}/{args.repeats}, turn {i + 1}/{args.turns}: {name}")
                if name == "re-evaluate":
                    drop_cache(chat.engine)  # type: ignore[arg-type]
                reply = chat.send(text)
                per[name][rep].append(
                    {
                        "ttft": reply.timings.ttft_s,
                        "prompt": reply.usage.prompt_tokens,
                        "cached": reply.usage.cached_tokens,
                        "reply": reply.usage.completion_tokens,
                        "text": reply.text,
                    }
                )

    def med(name: str, key: str, turn: int) -> float:
        return median([conv[turn][key] for conv in per[name]])

    ttft = {n: [med(n, "ttft", i) for i in range(args.turns)] for n in NAMES}
    report = Report(
        "ttft_turns",
        {
            "model": path.name,
            "threads": engines["qwenchat"].threads,
            "n_ctx": engines["qwenchat"].n_ctx,
            "turns": args.turns,
            "user messages": f"{msg_tokens} tokens",
            "replies": f"greedy, up to {args.reply_tokens} tokens",
            "repeats": f"{args.repeats} (medians per turn)",
        },
    )
    report.table(
        [
            "turn",
            "prompt tok",
            "qwenchat new tok",
            "qwenchat ttft ms",
            "re-eval new tok",
            "re-eval ttft ms",
            "re-eval/qwenchat",
            "reply tok",
        ],
        [
            [
                i + 1,
                int(med("qwenchat", "prompt", i)),
                int(med("qwenchat", "prompt", i) - med("qwenchat", "cached", i)),
                f"{ttft['qwenchat'][i] * 1e3:.0f}",
                int(med("re-evaluate", "prompt", i) - med("re-evaluate", "cached", i)),
                f"{ttft['re-evaluate'][i] * 1e3:.0f}",
                f"{ttft['re-evaluate'][i] / ttft['qwenchat'][i]:.2f}",
                int(med("qwenchat", "reply", i)),
            ]
            for i in range(args.turns)
        ],
    )
    last = args.turns
    report.ratio(
        f"qwenchat ttft turn {last} / turn 1", ttft["qwenchat"][-1] / ttft["qwenchat"][0], TARGET
    )
    report.ratio(
        f"re-evaluate ttft turn {last} / turn 1", ttft["re-evaluate"][-1] / ttft["re-evaluate"][0]
    )
    report.ratio(
        f"turn {last} ttft re-evaluate / qwenchat", ttft["re-evaluate"][-1] / ttft["qwenchat"][-1]
    )
    report.results = {
        "median_ttft_s": ttft,
        "runs": {
            n: [[{k: v for k, v in t.items() if k != "text"} for t in conv] for conv in per[n]]
            for n in NAMES
        },
    }
    report.note("new tok = prompt tokens evaluated this turn (prompt - reused from the KV cache)")
    for rep in range(args.repeats):
        texts_a = [t["text"] for t in per["qwenchat"][rep]]
        texts_b = [t["text"] for t in per["re-evaluate"][rep]]
        if texts_a != texts_b:
            turn = (
                next(i for i, (a, b) in enumerate(zip(texts_a, texts_b, strict=True)) if a != b) + 1
            )
            report.warn(
                f"run {rep + 1}: the two conversations' replies differ from turn {turn} "
                "(re-tokenized replies can differ from the generated ids); prompts then "
                "differ slightly in length"
            )
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
