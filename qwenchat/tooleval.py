"""Replaying tool questions against a model: does it call the right tool, and answer?

``qwenchat tools eval FILE.jsonl`` (and ``bench/tool_success.py``) read one case a
line: a prompt, the tool it needs, the argument values the call must have, and the
strings the answer must contain, where ``{result.FIELD}`` stands for that field of
the call's JSON result (``{result}``: the whole result), so a tool with live values
can be tested too. A case *answers* when the reply is the model's own sentence
holding every such string, with no raw JSON, fence or call markup in it: the
figure that matters to the user, not only whether the call was right.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from qwenchat.agent import ToolCallRecord
from qwenchat.errors import InputError

_TEMPLATE = re.compile(r"\{result(?:\.([A-Za-z_][\w.]*))?\}")
_MARKUP = re.compile(r"</?tool_(?:call|response)>|```|\{\s*\"|\"\s*:\s*[\[{\"\d]")
_WORD = re.compile(r"[^\W\d_]{2,}")


class EvalCase(BaseModel):
    """One line of an eval file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    tool: str | None = None
    """The tool the prompt needs; None: it needs none (no call is the right call)."""
    arguments: dict[str, Any] = {}
    """Argument values the call must have (strings compared case- and space-blind)."""
    answer_contains: list[str] = []


class CaseResult(BaseModel):
    """What the model did with one case."""

    prompt: str
    expected_tool: str | None
    calls: list[str]
    arguments: list[Any] = []
    """Each call's arguments, in order (as validated, or as the model wrote them)."""
    right_call: bool
    """The expected tool ran with the expected argument values (or, for a case that needs
    no tool, nothing was called)."""
    valid_arguments: bool
    """The expected tool was called with arguments that passed its schema."""
    answered: bool
    """A sentence of the model's own that holds every expected value, free of markup."""
    fallback: bool
    """The loop showed the tool's result because the model would not answer."""
    answer: str
    missing: list[str] = []


class EvalReport(BaseModel):
    """A whole file's results and its three rates."""

    model: str
    cases: list[CaseResult]

    @property
    def n(self) -> int:
        return len(self.cases)

    def rate(self, field: str) -> float:
        return sum(bool(getattr(c, field)) for c in self.cases) / self.n if self.cases else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cases": self.n,
            "right_call": self.rate("right_call"),
            "valid_arguments": self.rate("valid_arguments"),
            "answered": self.rate("answered"),
            "fallback": self.rate("fallback"),
        }


def load_cases(path: Path) -> list[EvalCase]:
    """The cases of a JSONL file; a bad line is an :class:`InputError` naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    cases = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cases.append(EvalCase.model_validate_json(line))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            detail = f"{where}: {problem['msg']}" if where else problem["msg"]
            raise InputError(
                f"{path}:{number}: {detail} (each line is a JSON object with"
                ' "prompt", "tool", "arguments", "answer_contains")'
            ) from None
    if not cases:
        raise InputError(f"{path} has no cases: write one JSON object a line")
    return cases


def judge(case: EvalCase, text: str, records: list[ToolCallRecord], fallback: bool) -> CaseResult:
    """Score one reply (its final text and the calls it made) against its case."""
    calls = [r.name for r in records]
    if case.tool is None:
        right = valid = not records
        result_text = ""
    else:
        mine = [r for r in records if r.name == case.tool]
        valid = any(r.status in ("ok", "error", "repeated") for r in mine)
        matching = [r for r in mine if r.status == "ok" and _same_arguments(case, r.arguments)]
        right = bool(matching)
        result_text = matching[0].result if matching else ""
    needles = [_fill(template, result_text) for template in case.answer_contains]
    missing = [n for n in needles if n is None or not contains(text, n)]
    answered = right and not fallback and not missing and is_sentence(text)
    return CaseResult(
        prompt=case.prompt,
        expected_tool=case.tool,
        calls=calls,
        arguments=[r.arguments for r in records],
        right_call=right,
        valid_arguments=valid,
        answered=answered,
        fallback=fallback,
        answer=text,
        missing=[n or "?" for n in missing],
    )


def is_sentence(text: str) -> bool:
    """Prose: three words or more, and no JSON, fence or tool markup."""
    return len(_WORD.findall(text)) >= 3 and not _MARKUP.search(text)


def contains(text: str, needle: str) -> bool:
    """Whether ``text`` states ``needle``: case-blind; a number as a whole number (``3`` is
    not in ``13``), written with or without thousands separators, or to fewer decimals
    when ``needle`` has more than two (a model may round 0.8125 to 0.81)."""
    plain = re.sub(r"(?<=\d)[,\u202f\u00a0 '](?=\d{3}\b)", "", text).lower()
    if not _is_number(needle):
        return needle.lower() in plain
    value = float(needle)
    for found in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", plain):
        number = float(found)
        decimals = len(found.partition(".")[2])
        if number == value or (decimals >= 2 and math.isclose(round(value, decimals), number)):
            return True
    return False


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(?:\.\d+)?", text) is not None


def _fill(template: str, result: str) -> str | None:
    """The template with ``{result...}`` replaced from the call's result (None: the
    result lacks the field, so nothing can satisfy it)."""
    data: Any = None
    if _TEMPLATE.search(template):
        try:
            data = json.loads(result)
        except ValueError:
            data = None
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        path = match.group(1)
        if path is None:
            return result
        current = data
        for key in path.split("."):
            if not isinstance(current, dict) or key not in current:
                missing = True
                return ""
            current = current[key]
        return current if isinstance(current, str) else json.dumps(current)

    filled = _TEMPLATE.sub(value, template)
    return None if missing else filled


def _same_arguments(case: EvalCase, arguments: Any) -> bool:
    if not isinstance(arguments, dict):
        return False
    return all(_same(arguments.get(k), v) for k, v in case.arguments.items())


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return "".join(got.lower().split()) == "".join(want.lower().split())
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(float(got), float(want))
    return bool(got == want)


Runner = Callable[[EvalCase], tuple[str, list[ToolCallRecord], bool]]
"""Answers one case: the final text, the calls made, whether it was the fallback."""


def evaluate(
    cases: list[EvalCase],
    run: Runner,
    model: str,
    progress: Callable[[int, CaseResult], None] = lambda _i, _r: None,
) -> EvalReport:
    """Run and judge every case in order."""
    results = []
    for i, case in enumerate(cases):
        text, records, fallback = run(case)
        results.append(judge(case, text, records, fallback))
        progress(i, results[-1])
    return EvalReport(model=model, cases=results)
