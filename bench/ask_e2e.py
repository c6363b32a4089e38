"""`qwenchat ask` end to end against a bare llama-cpp-python script, for a one-word answer.

Both run as fresh processes, interleaved (A/B/A/B), timed from process start to
exit, after --warmup untimed rounds:

  qwenchat ask  `qwenchat ask -m MODEL --temperature 0 --max-tokens 8 --threads N
                PROMPT`, with its defaults otherwise; its time includes config loading, model
                resolution, the GGUF header check, ChatML rendering and tokenization;
  bare script   bench/_bare_ask.py: imports llama_cpp only, loads the same model
                with qwenchat's defaults (n_ctx min(8192, the model's), GPU layers
                by the same rule, verbose=False) and the same threads, and answers
                the same ChatML prompt (default system prompt) with the same sampling.

The model file is assembled and read into the page cache before timing, so
assembly is not counted. Both answers are compared (greedy: they should match).
Target: median qwenchat / median bare <= 1.2.

    .venv/bin/python bench/ask_e2e.py [--model PATH|test|eval] [--repeats 5]
        [--threads N] [--warmup 1] [--json]
"""

from __future__ import annotations

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
    run,
)

PROMPT = "What is the capital of France? Answer with one word."
MAX_TOKENS = 8
TARGET = "<= 1.2"


def main() -> None:
    args = parse(parser(__doc__, repeats=5, warmup=1))

    from qwenchat.config import Sampling
    from qwenchat.engine.llama import DEFAULT_MAX_CTX
    from qwenchat.models import check_model_file

    path = model_path(args.model)
    n_ctx = min(DEFAULT_MAX_CTX, check_model_file(path).context_length or DEFAULT_MAX_CTX)
    s = Sampling()
    threads = args.threads or cpu_threads()
    ask = [QWENCHAT, "ask", "-m", str(path), "--temperature", "0"]
    ask += ["--max-tokens", str(MAX_TOKENS), "--threads", str(threads), PROMPT]
    bare = [sys.executable, str(BENCH_DIR / "_bare_ask.py"), str(path), chatml_prompt(PROMPT)]
    bare += [str(MAX_TOKENS), str(n_ctx), str(threads)]
    bare += [str(s.top_k), str(s.top_p), str(s.repeat_penalty)]
    names = {"qwenchat ask": ask, "bare script": bare}
    runs = interleave(
        {name: (lambda c=cmd: run(c)) for name, cmd in names.items()}, args.repeats, args.warmup
    )
    times = {name: [t for t, _ in rs] for name, rs in runs.items()}
    answers = {name: sorted({out.strip() for _, out in rs}) for name, rs in runs.items()}
    med = {name: median(v) for name, v in times.items()}

    report = Report(
        "ask_e2e",
        {
            "model": path.name,
            "threads": threads,
            "n_ctx": n_ctx,
            "prompt": repr(PROMPT),
            "sampling": f"greedy, up to {MAX_TOKENS} tokens",
            "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up",
        },
    )
    report.note(
        "qwenchat's time includes its config loading, model resolution and GGUF header check; "
        "model assembly is not timed"
    )
    report.table(
        ["contender", "median s", "min s", "max s", "answer", "runs (s)"],
        [
            [
                name,
                f"{med[name]:.3f}",
                f"{min(v):.3f}",
                f"{max(v):.3f}",
                " | ".join(repr(a) for a in answers[name]),
                " ".join(f"{x:.2f}" for x in v),
            ]
            for name, v in times.items()
        ],
    )
    report.ratio("qwenchat ask / bare script", med["qwenchat ask"] / med["bare script"], TARGET)
    report.ratio("qwenchat ask - bare script (s)", med["qwenchat ask"] - med["bare script"])
    report.results = {"seconds": times, "median_s": med, "answers": answers}
    if len({a for v in answers.values() for a in v}) > 1:
        report.warn(f"the answers differ: {answers}")
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
