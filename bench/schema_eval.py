"""Structured output (``ask --schema``): valid outputs on 20 schemas, and the decode
cost of the grammar.

Each schema (``bench/schemas/schemas.jsonl``: concise forms and JSON Schemas with
nesting, arrays with item counts, enums, integer ranges, nullable types) is asked
once through ``Chat.stream(..., schema=)`` as ``ask --schema`` does, temperature 0,
and the reply is parsed and validated. The baseline, side by side in the same run:
the same question without the grammar (the schema given in the prompt, as a user
would without ``--schema``), whose validity and decode rate are reported next to it.

    .venv/bin/python bench/schema_eval.py                 # 0.5B test model
    .venv/bin/python bench/schema_eval.py --model eval    # 1.5B
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from _common import model_path

from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.engine.llama import LlamaEngine
from qwenchat.errors import GenerationError
from qwenchat.schema import Schema

HERE = Path(__file__).resolve().parent


def ask(engine: LlamaEngine, prompt: str, schema: Schema | None) -> tuple[bool, float, int]:
    """(valid, decode tokens/s, tokens) of one reply."""
    chat = Chat(settings=Settings(), engine=engine, temperature=0.0, max_tokens=512)
    if schema is None:
        shown = json.dumps(SCHEMAS[prompt].json_schema)
        reply = chat.send(f"{prompt}\nAnswer with JSON only, following this schema: {shown}")
        text = reply.text.strip().removeprefix("```json").removesuffix("```").strip()
        try:
            SCHEMAS[prompt].load(text)
            valid = True
        except GenerationError:
            valid = False
        return valid, reply.timings.decode_tokens_per_s, reply.usage.completion_tokens
    try:
        stream = chat.stream(prompt, schema=schema)
        for _ in stream:
            pass
    except GenerationError as exc:
        print(f"  invalid: {exc}", file=sys.stderr)
        return False, 0.0, 0
    assert stream.reply is not None
    return True, stream.reply.timings.decode_tokens_per_s, stream.reply.usage.completion_tokens


SCHEMAS: dict[str, Schema] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="test", help="test, eval, or a GGUF path")
    parser.add_argument("--cases", type=Path, default=HERE / "schemas" / "schemas.jsonl")
    parser.add_argument("--json", dest="as_json", action="store_true")
    args = parser.parse_args()
    cases: list[dict[str, Any]] = [
        json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()
    ]
    for case in cases:
        spec = case["schema"]
        SCHEMAS[case["prompt"]] = Schema.parse(spec if isinstance(spec, str) else json.dumps(spec))
    engine = LlamaEngine(model_path(args.model), n_ctx=4096)
    rows = []
    for case in cases:
        prompt = case["prompt"]
        free = ask(engine, prompt, None)  # interleaved: both see the same machine state
        held = ask(engine, prompt, SCHEMAS[prompt])
        rows.append({"prompt": prompt, "grammar": held, "prompt_only": free})
        print(
            f"{held[0]!s:>5} {held[1]:5.1f} tok/s | {free[0]!s:>5} {free[1]:5.1f} tok/s"
            f"  {prompt[:50]}",
            file=sys.stderr,
        )
    valid = sum(r["grammar"][0] for r in rows)
    valid_free = sum(r["prompt_only"][0] for r in rows)
    rate = statistics.median(r["grammar"][1] for r in rows if r["grammar"][1])
    rate_free = statistics.median(r["prompt_only"][1] for r in rows if r["prompt_only"][1])
    summary = {
        "model": engine.model_name,
        "schemas": len(rows),
        "valid_with_grammar": valid,
        "valid_prompt_only": valid_free,
        "decode_tok_s_grammar": round(rate, 1),
        "decode_tok_s_free": round(rate_free, 1),
        "grammar_cost": round(1 - rate / rate_free, 3),
    }
    if args.as_json:
        print(json.dumps({**summary, "rows": rows}, indent=1))
        return
    print(f"{engine.model_name}, {len(rows)} schemas, temperature 0")
    print("| | valid outputs | decode tok/s (median) |")
    print("|---|---|---|")
    print(f"| `--schema` (grammar) | **{valid}/{len(rows)}** | {rate:.1f} |")
    print(f"| schema in the prompt only | {valid_free}/{len(rows)} | {rate_free:.1f} |")
    print(f"grammar decode cost: {1 - rate / rate_free:.0%} of the free decode rate")


if __name__ == "__main__":
    main()
