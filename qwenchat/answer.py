"""A reply's final answer: the last ``\\boxed{...}`` the model wrote in its own prose.

Math prompts and TIR mode ask for ``\\boxed{}``. Only the model's words count: not the
code it wrote (``print("\\boxed{5}")`` is not an answer, least of all when it failed to
run), and never what its code printed, which TIR shows it in output blocks the sandbox
fills (:mod:`qwenchat.tir` passes only the model's own text here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_BOXED = "\\boxed"
# A fenced code block (any language, or none), closed or running to the end of the text.
_CODE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)", re.S | re.M)


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None."""
    start = text.rfind(_BOXED + "{")
    while start != -1:
        depth, i = 0, start + len(_BOXED)
        for i in range(start + len(_BOXED), len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + len(_BOXED) + 1 : i].strip()
        start = text.rfind(_BOXED + "{", 0, start)  # unbalanced: try an earlier one
    return None


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return _CODE.sub("", text)


def final_answer(model_texts: Iterable[str]) -> str | None:
    """The last ``\\boxed{}`` in the prose of ``model_texts`` (the model's own pieces of a
    reply, in order), or None."""
    for text in reversed(list(model_texts)):
        found = extract_boxed(prose(text))
        if found is not None:
            return found
    return None
