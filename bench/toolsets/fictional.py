"""Fictional tools for the tool-calling benchmark: every value is made up, so no model
can know it, and the answer must come from the call.

Each result is a deterministic function of the arguments (a hash), so the same
question gets the same answer on every run and machine. The docstrings carry example
values, as real tools' docstrings do: small models are known to copy them instead of
the user's values, and the benchmark's questions never use them.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from qwenchat.tools import tool

CONDITIONS = ["sunny", "sleet", "fog", "light rain", "snow", "thunderstorms", "overcast"]
ORDER_STATES = ["processing", "shipped", "out for delivery", "delivered", "on hold"]
FLIGHT_STATES = ["on time", "delayed", "boarding", "cancelled", "landed"]
DEPARTMENTS = ["Finance", "Legal", "Research", "Logistics", "Marketing", "Security"]
AUTHORS = ["Mara Quell", "Ivo Tarrant", "Selin Okafor", "Bram Vastek", "Luz Arendt"]


def _n(*parts: object) -> int:
    """A stable number from the arguments (case and spacing ignored)."""
    key = "|".join(" ".join(str(p).lower().split()) for p in parts)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


@tool(safe=True)
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather in a city.

    Example: get_weather(city="Lima") returns the temperature and conditions in Lima.

    Args:
        city: the city's name, e.g. "Lima".
        unit: "celsius" or "fahrenheit".
    """
    celsius = _n("weather", city) % 41 - 8
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    condition = CONDITIONS[_n("sky", city) % len(CONDITIONS)]
    return {"city": city, "temperature": temperature, "unit": unit, "condition": condition}


@tool(safe=True)
def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict:
    """Convert an amount of money between currencies at today's rate.

    Example: convert_currency(amount=100, from_currency="USD", to_currency="EUR").

    Args:
        amount: how much money, in from_currency.
        from_currency: ISO 4217 code of the money's currency, e.g. "USD".
        to_currency: ISO 4217 code to convert to, e.g. "EUR".
    """
    rate = 0.2 + (_n("fx", from_currency.upper(), to_currency.upper()) % 3000) / 1000
    return {
        "amount": amount,
        "from": from_currency.upper(),
        "to": to_currency.upper(),
        "rate": rate,
        "result": round(amount * rate, 2),
    }


@tool(safe=True)
def get_stock_price(ticker: str) -> dict:
    """Get the latest price of a share on the stock exchange.

    Example: get_stock_price(ticker="NVTK").

    Args:
        ticker: the stock's ticker symbol, e.g. "NVTK".
    """
    cents = 500 + _n("stock", ticker.upper()) % 90000
    return {"ticker": ticker.upper(), "price": round(cents / 100, 2), "currency": "USD"}


@tool(safe=True)
def find_book(title: str) -> dict:
    """Look a book up in the library catalogue by its title.

    Example: find_book(title="The Glass Orchard").

    Args:
        title: the book's title, e.g. "The Glass Orchard".
    """
    n = _n("book", title)
    return {
        "title": title,
        "author": AUTHORS[n % len(AUTHORS)],
        "year": 1950 + n % 74,
        "pages": 120 + n % 700,
    }


@tool(safe=True)
def get_population(place: str) -> dict:
    """Get the current population of a town, city or country.

    Example: get_population(place="Ghent").

    Args:
        place: the place's name, e.g. "Ghent".
    """
    return {"place": place, "population": 20_000 + _n("people", place) % 9_000_000, "year": 2026}


@tool(safe=True)
def order_status(order_id: str) -> dict:
    """Get the status of a customer's order in the shop.

    Example: order_status(order_id="A-1001").

    Args:
        order_id: the order's id, e.g. "A-1001".
    """
    n = _n("order", order_id.upper())
    return {
        "order_id": order_id.upper(),
        "status": ORDER_STATES[n % len(ORDER_STATES)],
        "eta_days": n % 9,
    }


@tool(safe=True)
def flight_status(flight: str) -> dict:
    """Get the status and gate of a flight today.

    Example: flight_status(flight="QX 100").

    Args:
        flight: the flight number, e.g. "QX 100".
    """
    code = flight.upper().replace(" ", "")
    n = _n("flight", code)
    return {
        "flight": code,
        "status": FLIGHT_STATES[n % len(FLIGHT_STATES)],
        "gate": f"{'ABCDE'[n % 5]}{n % 40 + 1}",
    }


@tool(safe=True)
def lookup_employee(name: str) -> dict:
    """Find a colleague in the company directory: their department and phone extension.

    Example: lookup_employee(name="Jane Doe").

    Args:
        name: the person's full name, e.g. "Jane Doe".
    """
    n = _n("staff", name)
    return {
        "name": name,
        "department": DEPARTMENTS[n % len(DEPARTMENTS)],
        "extension": str(2000 + n % 8000),
    }
