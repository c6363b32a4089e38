"""The known-answer check: greedy completions whose answers any Qwen2.5 model knows.

A llama.cpp build that is wrong for the CPU it runs on does not fail, it writes
plausible garbage (``mpegmpegmpeg...``) or dies in native code. Two short greedy
completions with fixed answers tell a sound build from a broken one in about a
second: the prompts are long enough to go through the batched prompt path, and
the answers come from the one-token decoding path.

``qwenchat doctor`` and the test suite run it in a child process
(:func:`check_in_child`), so that a crash inside llama.cpp becomes a verdict
rather than the end of the caller; ``python -m qwenchat.engine.selfcheck [MODEL]``
is that child.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from qwenchat.chatml import render_segments
from qwenchat.config import Sampling
from qwenchat.engine.base import Engine

_CHILD_TIMEOUT_S = 300.0  # loading a big model from a cold disk, then two short replies


class Probe(BaseModel):
    """One question and the word its answer must contain (case-insensitive)."""

    question: str
    expect: str
    max_tokens: int = 12


# Facts that even a 0.5B coder model gets right greedily, checked on the 0.5B and 1.5B
# Qwen2.5 models; each answer is a word no garbage stream hits by chance.
PROBES = (
    Probe(question="What is the capital of France? Answer with one word.", expect="Paris"),
    Probe(question="What comes after 3, 6, 9, 12? Answer with the next number only.", expect="15"),
)


class SelfCheck(BaseModel):
    """The verdict: ``ok``, and one line saying what was expected and what came out."""

    ok: bool
    detail: str
    crashed: str | None = None
    """The signal that killed the child (``SIGSEGV``...), if one did."""


def known_answer(engine: Engine, probes: tuple[Probe, ...] = PROBES) -> SelfCheck:
    """Run each probe greedily on ``engine``; ok when every answer holds its word."""
    got: list[str] = []
    for probe in probes:
        prompt = render_segments([{"role": "user", "content": probe.question}])
        generation = engine.generate(prompt, Sampling(temperature=0, max_tokens=probe.max_tokens))
        for _ in generation:
            pass
        assert generation.result is not None
        text = generation.result.text.strip()
        if not re.search(rf"\b{re.escape(probe.expect)}\b", text, re.IGNORECASE):
            # repr(): the text is the model's, and may hold control sequences.
            return SelfCheck(
                ok=False,
                detail=f"asked {probe.question!r}, expected {probe.expect!r}, got {text[:60]!r}",
            )
        got.append(probe.expect)
    return SelfCheck(ok=True, detail=f"{len(got)} of {len(probes)} known answers right")


def check_in_child(
    model: str | Path | None = None,
    *,
    timeout: float = _CHILD_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> SelfCheck:
    """:func:`known_answer` on ``model`` (None: the default) in a child process with the
    caller's environment (plus ``env``) and config; a crash or a hang there is the verdict."""
    command = [sys.executable, "-m", "qwenchat.engine.selfcheck"]
    try:
        done = subprocess.run(
            [*command, *([str(model)] if model is not None else [])],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return SelfCheck(ok=False, detail=f"no answer within {timeout:.0f} s")
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        detail = f"llama.cpp crashed ({name}) on a known-answer completion"
        return SelfCheck(ok=False, detail=detail, crashed=name)
    try:
        return SelfCheck.model_validate_json(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValidationError):
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        return SelfCheck(ok=False, detail=f"the check failed: {lines[-1][:200]!r}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def main(argv: list[str]) -> int:
    """The child: load the model as ``ask`` would, check it, print the verdict as JSON."""
    from qwenchat.config import load_settings
    from qwenchat.engine.load import load_engine
    from qwenchat.errors import QwenchatError

    try:
        engine = load_engine(argv[0] if argv else None, load_settings())
    except QwenchatError as exc:
        print(json.dumps({"ok": False, "detail": str(exc)}))
        return 1
    print(known_answer(engine).model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
