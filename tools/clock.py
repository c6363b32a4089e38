"""Example tool: the current date and time in any time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qwenchat.tools import tool


@tool(safe=True, display_name="Clock")
def current_datetime(timezone: str = "UTC") -> dict[str, str]:
    """Get the current date, time and weekday in a time zone.

    Use it whenever the answer depends on today's date or the current time; you
    cannot know them otherwise. Returns a JSON object: "iso" (ISO 8601, e.g.
    "2025-03-14T09:26:53+01:00"), "date" (YYYY-MM-DD), "time" (HH:MM:SS, 24-hour),
    "weekday" (e.g. "Friday"), "timezone" and "utc_offset" (e.g. "+01:00").

    Args:
        timezone: an IANA time zone name such as "UTC", "Europe/Paris",
            "America/New_York" or "Asia/Tokyo" (not an abbreviation like "CET" or "EST").
    """
    now = datetime.now(_zone(timezone)).replace(microsecond=0)
    offset = now.isoformat()[19:]  # after "YYYY-MM-DDTHH:MM:SS"
    return {
        "iso": now.isoformat(),
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M:%S"),
        "weekday": now.strftime("%A"),
        "timezone": timezone,
        "utc_offset": offset,
    }


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a malformed key such as "../x"
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC', 'Europe/Paris' "
            "or 'America/New_York'"
        ) from None
