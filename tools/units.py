"""Example tool: unit conversion for length, mass, temperature and volume."""

from __future__ import annotations

from typing import Literal

from qwenchat.tools import tool

Unit = Literal[
    "m", "km", "cm", "mm", "mi", "yd", "ft", "in",
    "kg", "g", "lb", "oz",
    "C", "F", "K",
    "l", "ml", "gal", "qt",
]  # fmt: skip

# Factors to each kind's base unit (m, kg, l); US customary gallons and quarts.
_FACTORS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "mi": ("length", 1609.344),
    "yd": ("length", 0.9144),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
    "qt": ("volume", 0.946352946),
}
# Temperatures are affine, not proportional: (offset, scale) so that kelvin = (t + offset) * scale.
_TEMPERATURES: dict[str, tuple[float, float]] = {
    "K": (0.0, 1.0),
    "C": (273.15, 1.0),
    "F": (459.67, 5 / 9),
}


@tool(safe=True, display_name="Unit converter")
def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> str:
    """Convert a quantity from one unit to another of the same kind.

    Kinds and units: length: m, km, cm, mm, mi (mile), yd, ft, in (inch); mass: kg,
    g, lb (pound), oz (ounce); temperature: C (Celsius), F (Fahrenheit), K (kelvin);
    volume: l, ml, gal (US gallon), qt (US quart). Returns e.g. "5 km = 3.106855961 mi",
    with 10 significant digits.

    Args:
        value: the quantity to convert, a number, e.g. 5 or -40.5.
        from_unit: the unit of value, one of the symbols above (case-sensitive).
        to_unit: the unit to convert to; must be of the same kind as from_unit.
    """
    result = _convert(value, from_unit, to_unit)
    return f"{value:.10g} {from_unit} = {result:.10g} {to_unit}"


def _convert(value: float, from_unit: str, to_unit: str) -> float:
    if from_unit in _TEMPERATURES or to_unit in _TEMPERATURES:
        return _convert_temperature(value, from_unit, to_unit)
    (from_kind, from_factor), (to_kind, to_factor) = _FACTORS[from_unit], _FACTORS[to_unit]
    if from_kind != to_kind:
        raise ValueError(f"cannot convert {from_kind} ({from_unit}) to {to_kind} ({to_unit})")
    return value * from_factor / to_factor


def _convert_temperature(value: float, from_unit: str, to_unit: str) -> float:
    if from_unit not in _TEMPERATURES or to_unit not in _TEMPERATURES:
        other = to_unit if from_unit in _TEMPERATURES else from_unit
        raise ValueError(f"cannot convert between a temperature and {_FACTORS[other][0]} ({other})")
    offset, scale = _TEMPERATURES[from_unit]
    kelvin = (value + offset) * scale
    if kelvin < 0:
        raise ValueError(f"{value:g} {from_unit} is below absolute zero")
    offset, scale = _TEMPERATURES[to_unit]
    return kelvin / scale - offset
