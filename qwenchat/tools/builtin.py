"""The tools shipped with qwenchat.

``calculator`` parses the expression with :mod:`ast` and evaluates only a
whitelist of node types: numbers, arithmetic operators, ``pi``/``e`` and a few
math functions. Nothing is looked up or called outside that whitelist, so no
code can run. Integers and decimals are exact (decimals and ``/`` are
:class:`~fractions.Fraction`); the math functions work in floats.
"""

from __future__ import annotations

import ast
import decimal
import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import cast

from qwenchat.tools.registry import Tool, tool, tool_from_function

__all__ = ["builtin_tools", "calculator"]

Number = int | Fraction | float

MAX_DIGITS = 10_000
MAX_EXPRESSION = 1_000  # characters
_MAX_BITS = int(MAX_DIGITS * 3.33) + 1  # bits in a MAX_DIGITS-digit number
_MAX_ROUND_DIGITS = 1_000

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


@tool(safe=True, display_name="Calculator")
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly, e.g. '123456789 * 987654321' or '2 ** 0.5 / 3'.

    Use it for any arithmetic instead of computing in your head. Integers of any
    size and decimals are exact. Operators: + - * / // (floor division) % (remainder)
    ** (power), parentheses and unary minus. Functions: sqrt, log (natural; log(x, base)
    for another base), exp, sin, cos, tan (radians), abs, round (round(x) or
    round(x, digits)), floor, ceil. Constants: pi, e. Returns the result as a number,
    e.g. '121932631112635269'; a non-terminating fraction is given to 16 significant
    digits.

    Args:
        expression: the expression, written with the operators and functions above,
            e.g. 'sqrt(2) * 10 ** 3'. No variables, no units, no '=' or '^' (use **).
    """
    if len(expression) > MAX_EXPRESSION:
        raise ValueError(f"the expression is too long (over {MAX_EXPRESSION} characters)")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"not a valid expression: {getattr(exc, 'msg', exc)}") from None
    try:
        return _format(_eval(tree.body))
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("the result is too large") from None
    except RecursionError:
        raise ValueError("the expression is nested too deeply") from None


def builtin_tools() -> list[Tool]:
    """The built-in tools, with ``source="builtin"``."""
    return [tool_from_function(calculator, source="builtin")]


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _checked(_BINARY[type(node.op)](_eval(node.left), _eval(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            raise ValueError(f"unknown name '{node.id}'; the only constants are pi and e")
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        return _checked(_call(node))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ValueError("'^' is not a power here: use ** (e.g. 2 ** 10)")
    raise ValueError(
        f"'{ast.unparse(node)}' is not allowed: use numbers, + - * / // % **, and {_FUNCTION_LIST}"
    )


def _number(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"only numbers are allowed, not {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("the number is too large")
        return Fraction(repr(value))  # the decimal as written (repr round-trips), exactly
    return value


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise ValueError(
            f"unknown function '{ast.unparse(node.func)}'; available: {_FUNCTION_LIST}"
        )
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ValueError(f"{node.func.id}() takes plain arguments only")
    func, min_args, max_args = _FUNCTIONS[node.func.id]
    if not min_args <= len(node.args) <= max_args:
        counts = f"{min_args} or {max_args}" if max_args > min_args else str(min_args)
        raise ValueError(f"{node.func.id}() takes {counts} argument(s), not {len(node.args)}")
    args = [_eval(arg) for arg in node.args]
    try:
        return func(*args)
    except ValueError as exc:  # math's "math domain error" does not say where
        raise ValueError(f"{node.func.id}({', '.join(map(_format, args))}): {exc}") from None


def _divide(a: Number, b: Number) -> Number:
    # int / int stays exact: 10**20 / 3 as a float would lose digits.
    return Fraction(a) / b if isinstance(a, int) else a / b


def _power(base: Number, exponent: Number) -> Number:
    exact = _as_int(exponent)
    if exact is None or isinstance(base, float):
        result = base**exponent
        if isinstance(result, complex):
            raise ValueError(
                "the result is not a real number (a fractional power of a negative number)"
            )
        return result
    if base not in (0, 1, -1):
        size = max(Fraction(base).numerator.bit_length(), Fraction(base).denominator.bit_length())
        if abs(exact) * (size - 1) > _MAX_BITS:  # refuse before computing, not after
            raise ValueError(
                f"the exponent is too large: the result would have over {MAX_DIGITS} digits"
            )
    return Fraction(base) ** exact if exact < 0 else base**exact  # 2 ** -3 is 1/8, not 0.125


def _sqrt(x: Number) -> Number:
    exact = _as_int(x)
    if exact is not None and exact >= 0 and math.isqrt(exact) ** 2 == exact:
        return math.isqrt(exact)
    return math.sqrt(x)


def _round(x: Number, digits: Number = 0) -> Number:
    places = _as_int(digits)
    if places is None or abs(places) > _MAX_ROUND_DIGITS:
        raise ValueError(
            f"digits must be a whole number from -{_MAX_ROUND_DIGITS} to {_MAX_ROUND_DIGITS}"
        )
    return cast(Number, round(x, places)) if places else round(x)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.USub: lambda x: -x,
    ast.UAdd: lambda x: x,
}
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (_sqrt, 1, 1),
    "log": (_log, 1, 2),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}
_FUNCTION_LIST = ", ".join(_FUNCTIONS) + ", pi, e"


def _as_int(x: Number) -> int | None:
    if isinstance(x, int):
        return x
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    return None


def _checked(x: Number) -> Number:
    """``x``, unless it is too large to handle or not finite."""
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError("the result is too large or undefined")
    if isinstance(x, (int, Fraction)):
        bits = max(Fraction(x).numerator.bit_length(), Fraction(x).denominator.bit_length())
        if bits > _MAX_BITS:
            raise ValueError(f"the result has over {MAX_DIGITS} digits")
    return x


def _format(x: Number) -> str:
    exact = _as_int(x)
    if exact is not None:
        return _int_str(exact)
    if isinstance(x, Fraction):
        return _fraction_str(x)
    return repr(x)


def _fraction_str(x: Fraction) -> str:
    """An exact decimal when there is a short one (3/8 → 0.375), else 16 significant digits."""
    den = x.denominator
    twos = (den & -den).bit_length() - 1
    fives = 0
    while den % 5 ** (fives + 1) == 0:
        fives += 1
    places = max(twos, fives)
    if den == 2**twos * 5**fives and places <= MAX_DIGITS:
        digits = _int_str(abs(x.numerator) * 10**places // den).rjust(places + 1, "0")
        sign = "-" if x < 0 else ""
        return f"{sign}{digits[:-places]}.{digits[-places:]}"
    with decimal.localcontext() as context:  # localcontext(prec=...) needs Python 3.11
        context.prec = 16
        return str(decimal.Decimal(x.numerator) / x.denominator)


def _int_str(n: int) -> str:
    """``str(n)`` past Python's 4300-digit conversion limit (results may have up to MAX_DIGITS)."""
    chunk = 10**1000
    if n < 0:
        return "-" + _int_str(-n)
    parts = []
    while n >= chunk:
        n, low = divmod(n, chunk)
        parts.append(f"{low:01000d}")
    return str(n) + "".join(reversed(parts))
