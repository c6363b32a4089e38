"""Text qwenchat did not write, made safe to show in a terminal.

Replies, tool results, sandbox output, a server's responses, imported sessions, GGUF
metadata and persona cards may hold control characters: ESC opens sequences that move
the cursor, clear the screen, set the window title or write the clipboard (OSC 52); a
lone CR overwrites the line it ends; C1 characters (U+0080-U+009F) are 8-bit escapes
that some terminals obey. :func:`shown` turns each into a visible stand-in (the control
pictures of U+2400: ``␛``, ``␍``, ``␇``; ``\\x9b`` for C1), so nothing reaches the
terminal as a command and the reader still sees that something was there. Newlines and
tabs stay; CR LF becomes LF. Only what is shown changes: stored text stays exact.

A hand-written table, not a library: what is wanted is a total, stateless mapping of a
few code points (safe on any split of a stream), which ``str.translate`` does at C speed;
``rich.control.strip_control_codes`` leaves ESC alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEEP = {0x09, 0x0A}
_TABLE: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20) if code not in _KEEP}
_TABLE[0x7F] = "\u2421"  # ␡
_TABLE.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
# What JSON written with ensure_ascii=False leaves raw: C1, DEL and the two line
# separators some readers take for line ends.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")


def shown(text: str) -> str:
    """``text`` with every control character but LF and TAB made visible and inert."""
    return text.replace("\r\n", "\n").translate(_TABLE)


def shown_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)``, made inert (:func:`inert_json`)."""
    return inert_json(json.dumps(value, ensure_ascii=False, **kwargs))


def inert_json(text: str) -> str:
    """JSON text with the control characters ``ensure_ascii=False`` leaves raw escaped as
    ``\\uXXXX`` (they can only be inside strings): the same data to a JSON reader, inert
    in a terminal."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
