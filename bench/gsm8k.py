"""GSM8K accuracy in three modes: chain of thought, TIR, and the python tool.

    run     solve problems of ../shared/data/gsm8k/test.jsonl (the first --limit, from
            --start) with one model in one mode, greedy, a fresh conversation (and
            sandbox) per problem, through qwenchat's Chat as `ask` runs it; each result
            is appended to bench/results/gsm8k/MODEL-MODE.jsonl at once, and problems
            already there are skipped, so an interrupted run resumes where it stopped.
    report  read every results file and print accuracy, mean completion tokens, mean
            wall time and sandbox time per problem, by model and mode, and the gain of
            TIR and of the tool over chain of thought on the problems both solved.

Modes:
  cot   prompts/math-cot.md, the Qwen2.5-Math CoT prompt: "Please reason step by step,
        and put your final answer within \\boxed{}."
  tir   qwenchat's TIR mode (prompts/tir-math.md: the Qwen2.5-Math TIR prompt plus one
        sentence on the protocol), ```python blocks run in the sandbox, ```output fed
        back (qwenchat.tir), up to --max-rounds replies
  tool  the python tool offered through Qwen2.5 tool calls (<tool_call>, or the bare
        JSON small models write), with the CoT prompt plus "use the python tool"
  tir-official  TIR mode with the Qwen2.5-Math harness's TIR prompt verbatim

Grading: the number after `####` against the last \\boxed{} of the reply (commas, $,
units and LaTeX dropped; equal within 1e-6); a reply without \\boxed{} is graded by
its last number and counted in `no box`.

--data bench/data/bignum.jsonl runs the large-number set (bench/make_bignum.py) instead;
its results files are MODEL-bignum-MODE.jsonl, compared with bignum-cot.

With --samples K (cot and tir), each problem is answered by the vote of K solutions
sampled at Qwen2.5's recommended sampling (temperature 0.7, top_p 0.8, top_k 20,
repetition penalty 1.05; seeded by the problem's number), qwenchat.vote's maj@K; the
results file is MODEL-MODE@K.jsonl and each row keeps every sample's answer.

    .venv/bin/python bench/gsm8k.py run --model test|eval|PATH --mode cot|tir|tool|tir-official
        [--samples 1] [--limit 200] [--start 0] [--max-tokens 512] [--max-rounds 4]
        [--threads N]
    .venv/bin/python bench/gsm8k.py report [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, BenchError, cpu_threads, main_guard, model_path, print_table

DATA = BENCH_DIR.parent.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
RESULTS = BENCH_DIR / "results" / "gsm8k"
TOOL_PROMPT = (
    "Please reason step by step. Use the python tool for every calculation, then put your "
    "final answer within \\boxed{}."
)
# The Qwen2.5-Math harness's TIR prompt, verbatim: qwenchat's tir-math adds one sentence
# on the ```python/```output protocol, without which the coder models seldom wrote code.
OFFICIAL_TIR_PROMPT = (
    "Please integrate natural language reasoning with programs to solve the problem above, "
    "and put your final answer within \\boxed{}."
)
MODES = ("cot", "tir", "tool", "tir-official")
_LABEL = re.compile(r"-((?:bignum-)?(?:tir-official|cot|tir|tool)(?:@\d+)?)$")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LATEX = re.compile(r"\\(?:text|mathrm|textbf)\{([^}]*)\}|\\[a-z]+|[{}$]")


def load_problems(start: int, limit: int, data: Path = DATA) -> list[dict[str, Any]]:
    if not data.is_file():
        raise BenchError(f"{data} not found: the GSM8K test set is expected there")
    with data.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [
        {"index": i, "question": row["question"], "gold": gold_answer(row["answer"])}
        for i, row in enumerate(rows)
        if start <= i < start + limit
    ]


def gold_answer(solution: str) -> float:
    return float(solution.rsplit("####", 1)[1].strip().replace(",", ""))


def to_number(text: str | None) -> float | None:
    """The first number in a \\boxed{} answer (or the last one in a reply), if any."""
    if not text:
        return None
    cleaned = _LATEX.sub(lambda m: m.group(1) or " ", text)
    found = _NUMBER.findall(cleaned)
    if not found:
        return None
    try:
        return float(found[0].replace(",", ""))
    except ValueError:
        return None


def grade(answer: str | None, text: str, gold: float) -> tuple[float | None, bool, bool]:
    """(predicted number, correct, boxed)."""
    boxed = answer is not None
    if boxed:
        predicted = to_number(answer)
    else:
        numbers = _NUMBER.findall(text)
        predicted = to_number(numbers[-1]) if numbers else None
    correct = predicted is not None and abs(predicted - gold) < 1e-6
    return predicted, correct, boxed


def label(mode: str, samples: int) -> str:
    return mode if samples == 1 else f"{mode}@{samples}"


def results_file(model: Path, mode: str) -> Path:
    return RESULTS / f"{model.stem}-{mode}.jsonl"


def solve(
    engine: Any, mode: str, question: str, args: argparse.Namespace, seed: int = 0
) -> dict[str, Any]:
    from qwenchat.agent import AgentOptions, ApprovalPolicy
    from qwenchat.chat import Chat
    from qwenchat.config import Settings
    from qwenchat.prompts import get_prompt

    settings = Settings()
    start = time.perf_counter()
    with Chat(
        engine=engine,
        settings=settings,
        system={
            "cot": get_prompt("math-cot").text,
            "tool": TOOL_PROMPT,
            "tir-official": OFFICIAL_TIR_PROMPT,
        }.get(mode),
        tir=mode.startswith("tir"),
        python=mode == "tool",
        approval=ApprovalPolicy(yes=True),
        agent=AgentOptions(max_rounds=args.max_rounds),
        samples=args.samples,
        max_tokens=args.max_tokens,
        **({"temperature": 0} if args.samples == 1 else {"seed": seed}),
    ) as chat:
        reply = chat.send(question)
    code_runs = [c for c in reply.tool_calls if c.status in ("ok", "error")]
    return {
        "text": reply.text,
        "answer": reply.answer,
        "finish_reason": reply.finish_reason,
        "rounds": reply.rounds,
        "completion_tokens": reply.usage.completion_tokens,
        "prompt_tokens": reply.usage.prompt_tokens,
        "code_runs": len(code_runs),
        "sandbox_s": round(sum(c.duration_s for c in code_runs), 4),
        "wall_s": round(time.perf_counter() - start, 3),
        **(
            {"votes": reply.votes, "sample_answers": [r.answer for r in reply.sample_replies]}
            if reply.samples
            else {}
        ),
    }


def run(args: argparse.Namespace) -> None:
    from qwenchat.config import Settings
    from qwenchat.engine.load import load_engine

    model = model_path(args.model)
    if args.samples > 1 and args.mode not in ("cot", "tir"):
        raise BenchError("--samples votes in cot and tir modes only")
    prefix = "" if args.data == DATA else f"{args.data.stem}-"
    out = results_file(model, prefix + label(args.mode, args.samples))
    done = {json.loads(line)["index"] for line in out.open()} if out.exists() else set()
    problems = load_problems(args.start, args.limit, args.data)
    problems = [p for p in problems if p["index"] not in done]
    settings = Settings()
    settings.engine.threads = args.threads or cpu_threads()
    engine = load_engine(model, settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    name = f"{model.name} {label(args.mode, args.samples)}"
    print(f"{name}: {len(problems)} to solve, {len(done)} already in {out}")
    correct = 0
    for n, problem in enumerate(problems, 1):
        result = solve(engine, args.mode, problem["question"], args, seed=problem["index"] * 100)
        predicted, ok, boxed = grade(result["answer"], result["text"], problem["gold"])
        correct += ok
        row = {
            "index": problem["index"],
            "gold": problem["gold"],
            "predicted": predicted,
            "correct": ok,
            "boxed": boxed,
            **result,
        }
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(
            f"  [{time.strftime('%H:%M:%S')}] {n}/{len(problems)} #{problem['index']}: "
            f"{'ok ' if ok else 'bad'} {predicted} (gold {problem['gold']:g}) "
            f"{result['completion_tokens']} tok {result['wall_s']:.1f} s; {correct}/{n} so far",
            file=sys.stderr,
            flush=True,
        )


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and tokens over every row; times over the rows whose timing nothing
    disturbed (a row marked ``timing_disturbed`` ran while the machine was busy with
    other work: greedy decoding makes its answer the same, its wall time is not)."""
    n = len(rows)
    timed = [r for r in rows if not r.get("timing_disturbed")] or rows
    return {
        "problems": n,
        "accuracy": sum(r["correct"] for r in rows) / n,
        "correct": sum(r["correct"] for r in rows),
        "no_box": sum(not r["boxed"] for r in rows),
        "mean_tokens": sum(r["completion_tokens"] for r in rows) / n,
        "timed": len(timed),
        "mean_wall_s": sum(r["wall_s"] for r in timed) / len(timed),
        "mean_code_runs": sum(r["code_runs"] for r in rows) / n,
        "mean_sandbox_s": sum(r["sandbox_s"] for r in timed) / len(timed),
    }


def report(args: argparse.Namespace) -> None:
    files = sorted(RESULTS.glob("*.jsonl"))
    if not files:
        raise BenchError(f"no results in {RESULTS}: run `bench/gsm8k.py run` first")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in files:
        found = _LABEL.search(path.stem)
        if found is None:
            continue
        model, mode = path.stem[: found.start()], found.group(1)
        rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
        runs[(model, mode)] = sorted(rows, key=lambda r: r["index"])
    summary = {f"{model} {mode}": summarize(rows) for (model, mode), rows in runs.items()}
    gains = []
    for (model, mode), rows in runs.items():
        base_mode = "bignum-cot" if mode.startswith("bignum-") else "cot"
        cot = {r["index"]: r for r in runs.get((model, base_mode), [])}
        shared = [r for r in rows if r["index"] in cot]
        if mode == base_mode or not shared:
            continue
        ours = sum(r["correct"] for r in shared) / len(shared)
        base = sum(cot[r["index"]]["correct"] for r in shared) / len(shared)
        gains.append([model, f"{mode} vs {base_mode}", len(shared), f"{base:.1%}", f"{ours:.1%}",
                      f"{(ours - base) * 100:+.1f} pts"])  # fmt: skip
    if args.json:
        print(json.dumps({"runs": summary, "gains": gains}, indent=2))
        return
    print("gsm8k: greedy decoding (MODE@K: the vote of K samples), a fresh conversation and"
          " sandbox per problem\n")  # fmt: skip
    print_table(
        ["model mode", "problems", "accuracy", "no box", "tokens", "wall s (timed rows)",
         "code runs", "sandbox s"],
        [[name, s["problems"], f"{s['accuracy']:.1%} ({s['correct']})", s["no_box"],
          f"{s['mean_tokens']:.0f}", f"{s['mean_wall_s']:.2f} ({s['timed']})",
          f"{s['mean_code_runs']:.2f}", f"{s['mean_sandbox_s']:.3f}"]
         for name, s in summary.items()],
    )  # fmt: skip
    if gains:
        print()
        print_table(["model", "comparison", "same problems", "cot", "mode", "gain"], gains)


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = cli.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="solve problems with one model in one mode")
    runner.add_argument("--model", default="test", help="test, eval or a GGUF path")
    runner.add_argument("--mode", choices=MODES, required=True)
    runner.add_argument(
        "--data", type=Path, default=DATA, help="problems in GSM8K's format (bench/data/...)"
    )
    runner.add_argument("--samples", type=int, default=1, help="vote of K samples (maj@K)")
    runner.add_argument("--limit", type=int, default=200)
    runner.add_argument("--start", type=int, default=0)
    runner.add_argument("--max-tokens", type=int, default=512, help="per reply")
    runner.add_argument("--max-rounds", type=int, default=4, help="replies per problem")
    runner.add_argument("--threads", type=int)
    reporter = sub.add_parser("report", help="summarize every results file")
    reporter.add_argument("--json", action="store_true")
    args = cli.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main_guard(main)
