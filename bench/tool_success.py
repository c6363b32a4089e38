"""Tool-call success rate on prompts that each clearly need one example tool.

A prompt succeeds when the right tool is called with valid arguments (the call
runs and its arguments pass the prompt's check) and the final answer uses the
result (it contains the prompt's expected value, derived from the result); it is
answered *in a sentence* when that answer is also the model's own prose (no JSON,
fence or markup; not the loop's fallback).
Measured at temperature 0, side by side on one loaded model: ``robust`` (every
technique of the loop on), ``before`` (without the facts answer, the call grammar,
the example guard and the prose opening) and ``plain`` (no robustness at all).

    .venv/bin/python bench/tool_success.py                      # the 0.5B test model
    .venv/bin/python bench/tool_success.py --model eval         # the 1.5B evaluation model
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import model_path

from qwenchat.agent import TECHNIQUES, AgentOptions, ApprovalPolicy, Turn
from qwenchat.chatml import UserMessage
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine
from qwenchat.tooleval import is_sentence
from qwenchat.tools import load_tools

REPO = Path(__file__).resolve().parents[1]
Check = Callable[[dict, str], bool]  # (validated arguments, tool result) -> ok


@dataclass(frozen=True)
class Case:
    prompt: str
    tool: str
    expect: Callable[[str], str]  # tool result -> the value the final answer must contain
    args_ok: Callable[[dict], bool] = lambda _a: True


def same(value: str) -> Callable[[str], str]:
    return lambda _result: value


def field(name: str) -> Callable[[str], str]:
    return lambda result: str(json.loads(result)[name])


def converted(result: str) -> str:
    """'5 kg = 11.02311311 lb' -> '11.02' (the answer may round)."""
    number = result.split("=")[1].split()[0]
    whole, _, frac = number.partition(".")
    return f"{whole}.{frac[:1]}" if frac else whole


def units(src: str, dst: str) -> Callable[[dict], bool]:
    return lambda a: a.get("from_unit") == src and a.get("to_unit") == dst


CASES = [
    Case("What is 123456789 times 987654321?", "calculator", same("121932631112635269")),
    Case("Compute 2 to the power of 64.", "calculator", same("18446744073709551616")),
    Case("What is the square root of 1522756?", "calculator", same("1234")),
    Case("What is (4096 - 1234) * 37?", "calculator", same("105894")),
    Case("Calculate 17.5% of 2480.", "calculator", same("434")),
    Case("What is 7 factorial divided by 3? Use the calculator.", "calculator", same("1680")),
    Case("What is today's date in UTC?", "current_datetime", field("date")),
    Case(
        "What day of the week is it today in Tokyo?",
        "current_datetime",
        field("weekday"),
        lambda a: a.get("timezone") == "Asia/Tokyo",
    ),
    Case(
        "What time is it now in Paris?",
        "current_datetime",
        lambda r: json.loads(r)["time"][:5],
        lambda a: a.get("timezone") == "Europe/Paris",
    ),
    Case("Which year is it right now?", "current_datetime", lambda r: json.loads(r)["date"][:4]),
    Case("Convert 5 kilograms to pounds.", "convert_units", converted, units("kg", "lb")),
    Case("How many feet are in 100 meters?", "convert_units", converted, units("m", "ft")),
    Case(
        "Convert 98.6 degrees Fahrenheit to Celsius.", "convert_units", converted, units("F", "C")
    ),
    Case(
        "A marathon is 42.195 km. How many miles is that?",
        "convert_units",
        converted,
        units("km", "mi"),
    ),
    Case("How many ounces are in 2.5 pounds?", "convert_units", converted, units("lb", "oz")),
    Case("Convert 3 liters to milliliters.", "convert_units", converted, units("l", "ml")),
    Case(
        "What does the file notes.txt say about the meeting room?",
        "read_file",
        same("42"),
        lambda a: a.get("path") == "notes.txt",
    ),
    Case(
        "Read config.json and tell me which port is configured.",
        "read_file",
        same("8080"),
        lambda a: a.get("path") == "config.json",
    ),
    Case(
        "What is the first item on the list in todo.md?",
        "read_file",
        same("Buy milk"),
        lambda a: a.get("path") == "todo.md",
    ),
    Case(
        "Who wrote the poem in poem.txt? Read the file.",
        "read_file",
        same("Basho"),
        lambda a: a.get("path") == "poem.txt",
    ),
    Case("List the files in the current directory.", "list_directory", same("notes.txt")),
    Case(
        "Is there a file called config.json in this directory? Check the directory listing.",
        "list_directory",
        same("config.json"),
    ),
]

FILES = {
    "notes.txt": "Team notes.\nThe meeting is on Thursday at 3pm in room 42.\n",
    "config.json": '{"host": "localhost", "port": 8080, "debug": false}\n',
    "todo.md": "# To do\n\n1. Buy milk\n2. Call the plumber\n3. Water the plants\n",
    "poem.txt": (
        "An old silent pond\nA frog jumps into the pond\nSplash! Silence again.\n\n- Matsuo Basho\n"
    ),
}

MODES = {
    "robust": AgentOptions(**dict.fromkeys(TECHNIQUES, True)),
    "before": AgentOptions(**dict.fromkeys(TECHNIQUES, False)),
    "plain": AgentOptions(bare_json=False, repeat_guard=False, **dict.fromkeys(TECHNIQUES, False)),
}


def normalise(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3})", "", text).lower()


def run_case(engine: LlamaEngine, tools, case: Case, options: AgentOptions) -> dict:
    turn = Turn(
        engine,
        [UserMessage(content=case.prompt)],
        Sampling(temperature=0.0, max_tokens=256),
        tools=tools,
        policy=ApprovalPolicy(yes=True),
        options=options,
    )
    start = time.perf_counter()
    notices = [e for e in turn if type(e).__name__ == "Notice"]
    seconds = time.perf_counter() - start
    result = turn.result
    assert result is not None
    first = next((c for c in result.tool_calls if c.status == "ok"), None)
    called = first is not None and first.name == case.tool and case.args_ok(first.arguments)
    used = called and normalise(case.expect(first.result)) in normalise(result.text)
    fallback = result.fallback or any("kept repeating" in n.text for n in notices)
    sentence = used and not fallback and is_sentence(result.text)
    return {
        "prompt": case.prompt,
        "called": called,
        "success": bool(used),
        "fallback_answer": fallback,
        "sentence": bool(sentence),
        "rounds": result.rounds,
        "seconds": round(seconds, 2),
        "calls": [(c.name, c.status) for c in result.tool_calls],
        "text": result.text[:160],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="test", help="test, eval, or a GGUF path")
    parser.add_argument(
        "--limit", type=int, default=len(CASES), help="run only the first N prompts"
    )
    parser.add_argument(
        "--json", dest="as_json", action="store_true", help="print the per-prompt results"
    )
    args = parser.parse_args()
    path = model_path(args.model)
    engine = LlamaEngine(path, n_ctx=4096)
    tools = load_tools([REPO / "tools"]).registry
    cases = CASES[: args.limit]
    rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as work:
        for name, text in FILES.items():
            Path(work, name).write_text(text)
        os.chdir(work)  # read_file and list_directory are confined to the current directory
        for case in cases:  # modes interleaved, so both see the same machine state
            for mode, options in MODES.items():
                rows[mode].append(run_case(engine, tools, case, options))
    print(f"model: {path.name}; {len(cases)} prompts; temperature 0")
    print(
        f"{'mode':8} {'right call':>10} {'success':>8} {'by fallback':>11}"
        f" {'in a sentence':>13} {'mean rounds':>11} {'mean s':>7}"
    )
    for mode, results in rows.items():
        n = len(results)
        print(
            f"{mode:8} {sum(r['called'] for r in results):>7}/{n:<2}"
            f" {sum(r['success'] for r in results):>5}/{n:<2}"
            f" {sum(r['fallback_answer'] and r['success'] for r in results):>8}/{n:<2}"
            f" {sum(r['sentence'] for r in results):>10}/{n:<2}"
            f" {sum(r['rounds'] for r in results) / n:>11.2f}"
            f" {sum(r['seconds'] for r in results) / n:>7.1f}"
        )
    rates = {m: sum(r["sentence"] for r in rs) / len(cases) for m, rs in rows.items()}
    print("answered in a sentence: " + ", ".join(f"{m} {v:.0%}" for m, v in rates.items()))
    if args.as_json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
