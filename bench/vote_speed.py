"""The cost of a vote's K samples: decoded together in one llama.cpp batch against one
after another, side by side on one loaded model.

For each K, the same K seeded samplings (Qwen2.5's recommended sampling, seeds 1..K)
of the same GSM8K-style prompt, each reply at most --tokens tokens:

  single   one reply alone (`engine.generate`): the decode rate of one sequence
  one-by-one   the K replies one after another (`generate` K times, as a vote on an
               engine without batching runs them; the prompt comes from the KV cache)
  batched  the K replies together (`engine.generate_batch`: the prompt evaluated once
           into a batch context, the K sequences decoded in one llama_decode per step)

Reported per K: wall seconds for the K replies, sampled tokens per second over them,
and batched against one-by-one (the speed-up) and against the single sequence's rate.
Runs alternate between the two ways, after --warmup untimed rounds.

    .venv/bin/python bench/vote_speed.py [--model test|eval|PATH] [--k 2,4] [--tokens 128]
        [--repeats 3] [--warmup 1] [--threads N] [--json]
"""

from __future__ import annotations

import time

from _common import Report, cpu_threads, main_guard, median, model_path, parse, parser, progress

QUESTION = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes"
    " muffins for her friends every day with four. She sells the remainder at the farmers'"
    " market daily for $2 per fresh duck egg. How much in dollars does she make every day?"
)


def timed(read) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """(seconds, sampled tokens) of reading the generations ``read()`` gives."""
    start = time.perf_counter()
    generations = read()
    tokens = 0
    for generation in generations:
        for _ in generation:
            pass
        tokens += generation.result.usage.completion_tokens
    return time.perf_counter() - start, tokens


def ways(engine, prompt, samplings):  # type: ignore[no-untyped-def]
    """The two ways to get K replies, and one reply alone."""
    return {
        "single": lambda: [engine.generate(prompt, samplings[0])],
        "one-by-one": lambda: [engine.generate(prompt, s) for s in samplings],
        "batched": lambda: engine.generate_batch(prompt, samplings),
    }


def main() -> None:
    cli = parser(__doc__, repeats=3)
    cli.add_argument("--k", default="2,4", help="sample counts, comma-separated")
    cli.add_argument("--tokens", type=int, default=128, help="most tokens per reply")
    args = parse(cli)
    from qwenchat.chatml import SystemMessage, UserMessage, render_segments
    from qwenchat.config import Sampling
    from qwenchat.engine.llama import LlamaEngine

    path = model_path(args.model)
    threads = args.threads or cpu_threads()
    engine = LlamaEngine(path, n_ctx=4096, threads=threads)
    system = "Please reason step by step, and put your final answer within \\boxed{}."
    prompt = render_segments([SystemMessage(content=system), UserMessage(content=QUESTION)])
    report = Report(
        "vote_speed", {"model": path.name, "threads": threads, "tokens per reply": args.tokens}
    )
    rows, results = [], {}
    for k in (int(k) for k in args.k.split(",")):
        samplings = [Sampling(seed=s, max_tokens=args.tokens) for s in range(1, k + 1)]
        runs: dict[str, list[tuple[float, int]]] = {}
        for round_ in range(args.warmup + args.repeats):
            for name, read in ways(engine, prompt, samplings).items():
                figures = timed(read)
                if round_ >= args.warmup:
                    runs.setdefault(name, []).append(figures)
            progress(f"K={k} round {round_ + 1} done")
        wall = {name: median([s for s, _ in r]) for name, r in runs.items()}
        rate = {name: median([t / s for s, t in r]) for name, r in runs.items()}
        results[f"K={k}"] = {"runs": runs, "wall_s": wall, "tokens_per_s": rate}
        rows += [[f"K={k}", name, f"{wall[name]:.2f}", f"{rate[name]:.1f}"] for name in runs]
        report.ratio(f"K={k}: batched wall / one-by-one wall", wall["batched"] / wall["one-by-one"])
        report.ratio(f"K={k}: batched tokens/s / one sequence's", rate["batched"] / rate["single"])
    report.table(["K", "way", "wall s (median)", "tokens/s"], rows)
    report.results = results
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
