"""Where a call's argument values came from: the conversation, or the tool's own example.

Tool docstrings carry example values (``ticker: e.g. "NVTK"``), and small models
copy them instead of the user's: ``get_stock_price(ticker="NVTK")`` for a question
about another ticker, ``get_weather(city="Lima")`` for a stock question. A value
that appears in the tool's spec, in a call that takes nothing from what the user or a
tool said, is such a copy; the loop answers it with an error that names the copied
value, so the model calls again with the user's, instead of answering from the
example's result.
"""

from __future__ import annotations

import json
import re
from typing import Any

from qwenchat.tools import Tool

_MAX_NAME_WORDS = 3
_CODE = re.compile(r"[()\[\]{}=+*/<>]")
_WORD = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]{2,}")
"""A word or number of a value, as the user could have said it."""


def copied_example(tool: Tool, arguments: dict[str, Any], said: str) -> tuple[str, str] | None:
    """The first argument (name, value as text) copied from ``tool``'s spec, when the call
    takes none of its values from ``said`` (what the user and the tools said).

    A call that uses any word or number the user said is the user's, even where a
    value is also an example: ``convert(amount=45, from_currency="USD")`` for "45 US
    dollars" (the model rightly turned "US dollars" into the example's code), or
    ``calculator(expression="123456789 * 987654321")`` for "123456789 times 987654321".
    Values a parameter is restricted to (an enum), its default, booleans and
    one-character values are neither examples nor the user's.
    """
    spec = _spec_text(tool)
    texts = _free_values(tool, arguments)
    if any(mentions(said, word) for _, text in texts for word in _WORD.findall(text)):
        return None
    return next(((name, text) for name, text in texts if mentions(spec, text)), None)


def copied_argument(tool: Tool, arguments: dict[str, Any], said: str) -> str | None:
    """The argument whose value a call copied, wholly or in part, from ``tool``'s example:
    ``name`` for ``lookup_employee(name="Jane Doe")`` (:func:`copied_example`), and
    ``flight`` for ``flight_status(flight="QX 318")`` when the user asked about LX 318
    (a short value, a name or an id, mixing the user's words with a word of the example
    the user did not say; code and expressions, which mix keywords with the user's
    numbers by nature, are not looked at).
    A value with nothing of the user's, in a call with something of theirs (``"USD"``
    for "45 US dollars"), is theirs, as for :func:`copied_example`.
    """
    whole = copied_example(tool, arguments, said)
    if whole is not None:
        return whole[0]
    spec = _spec_text(tool)
    for name, text in _free_values(tool, arguments):
        words = _WORD.findall(text)
        if len(words) > _MAX_NAME_WORDS or _CODE.search(text):  # code mixes by nature
            continue
        theirs = [mentions(said, word) for word in words]
        copied = [not t and mentions(spec, w) for w, t in zip(words, theirs, strict=True)]
        if any(theirs) and any(copied):
            return name
        # A number is not renamed the way "US dollars" becomes "USD": one of the
        # example's that nobody said, where the user gave numbers, is a copy
        # (bus line "14" for "the number 7 bus", nights=3 for "one night").
        if _NUMBER.fullmatch(text) and mentions(spec, text) and not any(theirs) and numbers(said):
            return name
    return None


def offers(tool: Tool, argument: str, copy: str, question: str) -> list[Any]:
    """The values the user's message can give ``argument`` in place of the ``copy`` of
    the example: its numbers for a numeric parameter, else its :func:`phrases` that hold
    a word of the user's beyond the copy's (offered ``"Museum"`` for "the Maritime
    Museum", a model that wrote ``"Museum of Clocks"`` takes the part it copied)."""
    schema = tool.parameters.get("properties", {}).get(argument, {})
    if schema.get("type") in ("integer", "number"):
        cast = int if schema["type"] == "integer" else float
        return [cast(n) for n in numbers(question)]
    copied = {w.lower() for w in _WORD.findall(copy)}
    return [p for p in phrases(question) if not {w.lower() for w in _WORD.findall(p)} <= copied]


def numbers(text: str) -> list[str]:
    """The numbers ``text`` gives, in digits or as a word up to twelve, in order, once
    each (``["7"]`` for "the number 7 bus", ``["1"]`` for "one night")."""
    found = [
        m.group(0).lower() if m.group(0)[0].isdigit() else str(_NUMBER_WORDS[m.group(0).lower()])
        for m in _NUMBER_OR_WORD.finditer(text)
    ]
    return list(dict.fromkeys(found))


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        [
            *("zero", "one", "two", "three", "four", "five", "six"),
            *("seven", "eight", "nine", "ten", "eleven", "twelve"),
        ]
    )
}
_NUMBER_OR_WORD = re.compile(
    rf"(?<![\w.])(?:\d+(?:\.\d+)?|{'|'.join(_NUMBER_WORDS)})(?![\w]|\.\d)", re.IGNORECASE
)


def phrases(text: str, max_words: int = 4) -> list[str]:
    """Every run of 1 to ``max_words`` words of ``text``, as written there (``"LX 318"``,
    ``"Tomas Berglund"``, ``"K-2209"``), longest first: the values a user's message can
    give an argument."""
    words = [
        m.span() for m in _PHRASE_WORD.finditer(text) if text[m.start() - 1 : m.start()] != "'"
    ]
    found = set()
    for i, (start, end) in enumerate(words):
        found.add(text[start:end])
        for j in range(i + 1, min(i + max_words, len(words))):
            if text[words[j - 1][1] : words[j][0]].strip():  # punctuation between: no phrase
                break
            found.add(text[start : words[j][1]])
    return sorted(found, key=lambda p: (-len(p), p))


_PHRASE_WORD = re.compile(r"\w[\w.-]*\w|\w")
"""A word of a phrase: inner hyphens and dots kept (``K-2209``, ``3.5``); an apostrophe
ends it, and what follows one is no word, so that "Amira Haddad's phone" offers
``Amira Haddad`` and no ``s``."""


def _spec_text(tool: Tool) -> str:
    return json.dumps(tool.spec()["function"], ensure_ascii=False)


def _free_values(tool: Tool, arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value as text) of the arguments the model chose freely: not an enum's
    value, the default, a boolean or a single character."""
    properties = tool.parameters.get("properties", {})
    texts = []
    for name, value in arguments.items():
        schema = properties.get(name, {})
        text = _as_text(value)
        if text is not None and "enum" not in schema and value != schema.get("default"):
            texts.append((name, text))
    return texts


def steer(tool: Tool, name: str, value: str) -> str:
    """The tool result that sends the model back to the user's own value."""
    return (
        f"Error: {name}={value!r} is the example from the description of {tool.name}, not a"
        f" value from the user's message. Call {tool.name} again with the {name} the user"
        " asked about."
    )


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and len(value.strip()) > 1:
        return value.strip()
    return None


def mentions(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text`` as a whole word or number, ignoring case."""
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", text, re.IGNORECASE) is not None


def uses_results(answer: str, results: list[str], given: str) -> bool:
    """Whether ``answer`` states anything the results said that ``given`` (the question
    and the calls' arguments) did not: a number, or a word of a value.

    An answer that states none ("I'm sorry, I can't assist with that", "Yes, it is
    raining in Porto" for a result that says overcast) did not use the results. When
    the results hold nothing to look for (no JSON values or numbers), any answer does.
    """
    wanted = [v for result in results for v in _values(result) if not mentions(given, v)]
    if not wanted:
        return True
    plain = re.sub(r"(?<=\d),(?=\d{3}\b)", "", answer)
    return any(mentions(plain, v) for v in wanted)


def _values(result: str) -> list[str]:
    """What a result says: its JSON scalars (numbers, and each word of three letters or
    more of a string), else the numbers in its text."""
    try:
        data = json.loads(result)
    except ValueError:
        return re.findall(r"-?\d+(?:\.\d+)?", result)
    found: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            found += re.findall(r"[^\W\d_]{3,}|\d+(?:\.\d+)?", item)
        elif not isinstance(item, bool) and isinstance(item, (int, float)):
            found.append(_as_text(item) or str(item))
    return found
