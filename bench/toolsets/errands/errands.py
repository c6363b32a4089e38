"""A second fictional tool set, for checking that what the loop does for small models is
not tuned to the first one (``bench/toolsets/fictional.py``): other domains, other
argument shapes (two arguments, integers, enums), and docstring examples written the
way real tools write them.

Every value is made up and a deterministic function of the arguments, so no model can
know it and every run gets the same one.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from qwenchat.tools import tool

ROUTES = ["on time", "running 4 minutes late", "running 11 minutes late", "cancelled"]
LEVELS = ["good", "moderate", "poor", "very poor"]
CLASSES = ["yoga", "spinning", "pilates", "boxing", "swimming"]


def _n(*parts: object) -> int:
    """A stable number from the arguments (case and spacing ignored)."""
    key = "|".join(" ".join(str(p).lower().split()) for p in parts)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


@tool(safe=True)
def bus_arrival(stop: str, line: str) -> dict:
    """When the next bus of a line arrives at a stop.

    Example: bus_arrival(stop="Central Station", line="14").

    Args:
        stop: the bus stop's name, e.g. "Central Station".
        line: the bus line, e.g. "14".
    """
    n = _n("bus", stop, line)
    return {"stop": stop, "line": line, "minutes": 1 + n % 25, "state": ROUTES[n % len(ROUTES)]}


@tool(safe=True)
def recipe_calories(dish: str, servings: int = 1) -> dict:
    """The calories in a number of servings of a dish from the recipe database.

    Example: recipe_calories(dish="lentil soup", servings=2).

    Args:
        dish: the dish, e.g. "lentil soup".
        servings: how many servings.
    """
    per = 150 + _n("kcal", dish) % 700
    return {"dish": dish, "servings": servings, "calories": per * servings}


@tool(safe=True)
def air_quality(city: str) -> dict:
    """Today's air quality index in a city.

    Example: air_quality(city="Lyon").

    Args:
        city: the city, e.g. "Lyon".
    """
    n = _n("aqi", city)
    return {"city": city, "aqi": 10 + n % 240, "level": LEVELS[n % len(LEVELS)]}


@tool(safe=True)
def parking_spaces(garage: str) -> dict:
    """How many free spaces a parking garage has right now.

    Example: parking_spaces(garage="Harbour Garage").

    Args:
        garage: the garage's name, e.g. "Harbour Garage".
    """
    n = _n("park", garage)
    return {"garage": garage, "free": n % 400, "price_per_hour": 1 + n % 6}


@tool(safe=True)
def museum_tickets(museum: str, visitor: Literal["adult", "child", "senior"] = "adult") -> dict:
    """The entry price of a museum for one visitor.

    Example: museum_tickets(museum="Museum of Clocks", visitor="adult").

    Args:
        museum: the museum, e.g. "Museum of Clocks".
        visitor: "adult", "child" or "senior".
    """
    base = 8 + _n("museum", museum) % 20
    price = {"adult": base, "child": base // 2, "senior": base - 3}[visitor]
    return {"museum": museum, "visitor": visitor, "price_eur": price}


@tool(safe=True)
def gym_schedule(day: Literal["monday", "tuesday", "wednesday", "thursday", "friday"]) -> dict:
    """The class the gym holds at 6 pm on a weekday, and its trainer.

    Example: gym_schedule(day="monday").

    Args:
        day: the weekday, in lower case.
    """
    n = _n("gym", day)
    trainers = ["Noor", "Felix", "Akira", "Dalia"]
    return {"day": day, "class": CLASSES[n % len(CLASSES)], "trainer": trainers[n % 4]}


@tool(safe=True)
def hotel_rate(hotel: str, nights: int) -> dict:
    """The price of a hotel room for a number of nights, breakfast included.

    Example: hotel_rate(hotel="Hotel Meridian", nights=3).

    Args:
        hotel: the hotel's name, e.g. "Hotel Meridian".
        nights: how many nights.
    """
    per_night = 60 + _n("hotel", hotel) % 240
    return {"hotel": hotel, "nights": nights, "total_eur": per_night * nights}


@tool(safe=True)
def package_tracking(tracking_number: str) -> dict:
    """Where a parcel sent with the courier is now.

    Example: package_tracking(tracking_number="TR000111").

    Args:
        tracking_number: the parcel's tracking number, e.g. "TR000111".
    """
    places = ["the sorting centre", "the local depot", "the delivery van", "your door"]
    n = _n("parcel", tracking_number.upper())
    return {"tracking_number": tracking_number.upper(), "location": places[n % 4]}
