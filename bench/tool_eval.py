"""Tool calling on a JSONL set (``qwenchat tools eval``'s format), each loop technique on
and off side by side on one loaded model, cases interleaved across the modes.

Modes: ``before`` (the loop as it was: bare-JSON parsing and the repeat guard only),
``+facts`` (answer from the results given as facts when the model will not answer),
``+grammar`` (calls continued under the call grammar once they open), ``+examples``
(a docstring example copied as an argument is sent back once), ``+prose`` (the
answer after the results may not open with JSON, a fence or markup), ``+described``
(a call the reply only describes is made), ``all``, and ``-X`` for all but ``+X``
(``-described``: every technique but that one).
Progress goes to stderr, a line per case; each mode's per-case verdicts are kept in
``bench/results/tools/<model>-<cases>-<mode>.jsonl``.

    .venv/bin/python bench/tool_eval.py                               # 0.5B, fictional set
    .venv/bin/python bench/tool_eval.py --model eval --modes before,all
    .venv/bin/python bench/tool_eval.py --modes=-described,all       # leave one out
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import model_path

from qwenchat.agent import TECHNIQUES, AgentOptions, ApprovalPolicy
from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine
from qwenchat.tooleval import EvalReport, judge, load_cases
from qwenchat.tools import load_tools

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tools"
"""Each mode's per-case verdicts, a JSON line each: <model>-<cases>-<mode>.jsonl."""
LABELS = {
    "answer_from_facts": "+facts",
    "constrained_calls": "+grammar",
    "described_calls": "+described",
    "example_guard": "+examples",
    "prose_answers": "+prose",
    "routed_calls": "+routed",
}
BEFORE = dict.fromkeys(TECHNIQUES, False)
MODES = {
    "before": AgentOptions(**BEFORE),
    **{LABELS[flag]: AgentOptions(**{**BEFORE, flag: True}) for flag in TECHNIQUES},
    **{
        "-" + LABELS[flag][1:]: AgentOptions(**{**dict.fromkeys(TECHNIQUES, True), flag: False})
        for flag in TECHNIQUES
    },
    "all": AgentOptions(**dict.fromkeys(TECHNIQUES, True)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="test", help="test, eval, or a GGUF path")
    parser.add_argument("--cases", type=Path, default=HERE / "toolsets" / "fictional.jsonl")
    parser.add_argument("--tools-dir", type=Path, default=HERE / "toolsets")
    parser.add_argument(
        "--modes",
        default=",".join(m for m in MODES if not m.startswith("-")),
        help="comma-separated",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N cases")
    parser.add_argument("--json", dest="as_json", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    cases = load_cases(args.cases)[: args.limit or None]
    engine = LlamaEngine(model_path(args.model), n_ctx=4096)
    tools = load_tools([args.tools_dir]).registry
    results: dict[str, list] = {m: [] for m in modes}
    seconds = dict.fromkeys(modes, 0.0)
    for case in cases:
        for mode in modes:
            chat = Chat(
                settings=Settings(),
                engine=engine,
                tools=tools,
                agent=MODES[mode],
                approval=ApprovalPolicy(yes=True),
                temperature=0.0,
                max_tokens=256,
            )
            start = time.perf_counter()
            reply = chat.send(case.prompt)
            seconds[mode] += time.perf_counter() - start
            verdict = judge(case, reply.text, reply.tool_calls, reply.fallback)
            results[mode].append(verdict)
            mark = "ok" if verdict.answered else "--"
            called = [(r.name, r.arguments) for r in reply.tool_calls]
            print(
                f"{mode:>9} {mark} {case.prompt[:40]!r} {called} -> {reply.text[:70]!r}",
                file=sys.stderr,
            )
    print(f"{engine.model_name}, {len(cases)} cases of {args.cases.name}, temperature 0")
    print(
        "| mode | right call | valid arguments | answered in a sentence | result shown | s/case |"
    )
    print("|---|---|---|---|---|---|")
    for mode in modes:
        r = EvalReport(model=engine.model_name, cases=results[mode])
        print(
            f"| {mode} | {r.rate('right_call'):.0%} | {r.rate('valid_arguments'):.0%}"
            f" | **{r.rate('answered'):.0%}** ({sum(c.answered for c in r.cases)}/{r.n})"
            f" | {r.rate('fallback'):.0%} | {seconds[mode] / r.n:.1f} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    for mode, verdicts in results.items():
        path = RESULTS / f"{engine.model_name}-{args.cases.stem}-{mode}.jsonl"
        path.write_text("".join(c.model_dump_json() + "\n" for c in verdicts))
    if args.as_json:
        print(json.dumps({m: [c.model_dump() for c in rs] for m, rs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
