"""Character Card import: V1, V2 and V3 cards, from JSON files and PNG images, as personas.

A card PNG carries the card as base64-encoded JSON in a ``tEXt`` chunk, keyword
``chara`` (V1/V2) or ``ccv3`` (V3, preferred when both are there); the chunks are
read with the standard library only. The card's texts become the persona's system
prompt in the order SillyTavern sends them; the fields qwenchat does not use are
kept in :attr:`Persona.extra`. Lorebooks (``character_book``) are dropped with a
notice for the caller to show.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from qwenchat.errors import InputError
from qwenchat.personas.persona import Persona

_MIB = 1024 * 1024
_MAX_BYTES = {".png": 10 * _MIB, ".json": 1 * _MIB}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CARD_CHUNKS = ("ccv3", "chara")  # in order of preference
_SPECS = {"chara_card_v2": "V2", "chara_card_v3": "V3"}
# SillyTavern's default main prompt, which {{original}} in a card's system_prompt stands for.
_MAIN_PROMPT = "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}."
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
_START = re.compile(r"<START>", re.IGNORECASE)


class CardData(BaseModel):
    """A card's ``data`` (a V1 card's top level): the fields qwenchat uses; the rest are kept."""

    model_config = ConfigDict(extra="allow")

    name: str
    nickname: str | None = None  # V3: {{char}} when set
    description: str = ""
    personality: str = ""
    scenario: str = ""
    system_prompt: str = ""
    first_mes: str = ""
    mes_example: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = []
    character_book: Any = None


def import_card(path: Path, name: str | None = None) -> tuple[Persona, list[str]]:
    """Read a card file as a persona (called ``name``, else after the character).

    Returns the persona and notices for the user (what was not imported).
    Raises :class:`InputError` naming the file when it is not a card qwenchat can read.
    """
    raw = _read(path)
    if path.suffix.lower() == ".png":
        raw = _png_card(raw, path)
    version, data = _card_fields(_parse_json(raw, path), path)
    try:
        card = CardData.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        where = "" if version == "V1" else "data."
        raise InputError(f"character card {path}: '{where}{key}': {err['msg']}") from None
    return _persona(card, version, path, name), _notices(card)


def _read(path: Path) -> bytes:
    limit = _MAX_BYTES.get(path.suffix.lower())
    if limit is None:
        raise InputError(f"character card {path}: expected a .png or .json card file")
    try:
        if path.stat().st_size > limit:
            raise InputError(f"character card {path} is over {limit // _MIB} MiB, too big for one")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read character card {path}: {exc.strerror or exc}") from None


def _png_card(png: bytes, path: Path) -> bytes:
    """The card JSON from the preferred card chunk."""
    chunks = _png_text_chunks(png, path)
    key = next((key for key in _CARD_CHUNKS if key in chunks), None)
    if key is None:
        raise InputError(
            f"character card {path}: the PNG holds no card (no 'chara' or 'ccv3' tEXt chunk)"
        )
    try:
        return base64.b64decode(b"".join(chunks[key].split()), validate=True)
    except binascii.Error:
        raise InputError(f"character card {path}: the '{key}' chunk is not valid base64") from None


def _png_text_chunks(png: bytes, path: Path) -> dict[str, bytes]:
    """The ``tEXt`` chunks by keyword, up to ``IEND``; bounds are checked, CRCs are not."""
    if not png.startswith(_PNG_SIGNATURE):
        raise InputError(f"character card {path} is not a PNG image (no PNG signature)")
    chunks: dict[str, bytes] = {}
    pos = len(_PNG_SIGNATURE)
    while pos < len(png):
        # A chunk: 4-byte length, 4-byte type, data, 4-byte CRC.
        if pos + 12 > len(png):
            raise InputError(f"character card {path}: the PNG is truncated")
        length, kind = struct.unpack_from(">I4s", png, pos)
        end = pos + 8 + length
        if end + 4 > len(png):
            raise InputError(f"character card {path}: the PNG is truncated")
        if kind == b"tEXt":
            keyword, _, text = png[pos + 8 : end].partition(b"\0")
            chunks.setdefault(keyword.decode("latin-1"), text)
        elif kind == b"IEND":
            break
        pos = end + 4
    return chunks


def _parse_json(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        card = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InputError(f"character card {path}: the card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise InputError(f"character card {path}: the card is not a JSON object")
    return card


def _card_fields(card: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    """The card's version and the mapping holding its fields."""
    spec = card.get("spec")
    if spec is None and "data" not in card:
        return "V1", card
    if spec not in _SPECS:
        raise InputError(
            f"character card {path}: unsupported spec {spec!r:.60}; "
            "expected chara_card_v2 or chara_card_v3 (or a V1 card without a spec)"
        )
    data = card.get("data")
    if not isinstance(data, dict):
        raise InputError(f"character card {path}: 'data' is missing or not an object")
    return _SPECS[spec], data


def _persona(card: CardData, version: str, path: Path, name: str | None) -> Persona:
    name = name or _slug(card.name)
    if not name:
        raise InputError(
            f"character card {path}: cannot make a persona name from {card.name!r:.60}; "
            "pass a name for it"
        )
    try:
        return Persona(
            name=name,
            char_name=card.nickname or card.name,
            description=f"{card.name}, from {path.name} (Character Card {version})",
            greeting=card.first_mes,
            alternate_greetings=card.alternate_greetings,
            post_history_instructions=_ORIGINAL.sub("", card.post_history_instructions).strip(),
            extra=card.model_extra or {},
            system_prompt=_system_prompt(card),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        raise InputError(f"character card {path}: persona '{key}': {err['msg']}") from None


def _system_prompt(card: CardData) -> str:
    """The card's texts in SillyTavern's order: main prompt, description, personality,
    scenario, then the example dialogues (``<START>`` separates them)."""
    main = card.system_prompt.strip()
    main = _ORIGINAL.sub(lambda _: _MAIN_PROMPT, main) if main else _MAIN_PROMPT
    examples = [block.strip() for block in _START.split(card.mes_example) if block.strip()]
    parts = [
        main,
        card.description,
        card.personality and f"{{{{char}}}}'s personality: {card.personality}",
        card.scenario and f"Scenario: {card.scenario}",
        "Example dialogue:\n\n" + "\n\n".join(examples) if examples else "",
    ]
    return "\n\n".join(part.strip() for part in parts if part and part.strip())


def _slug(name: str) -> str:
    """A persona name from a character's: ASCII letters, digits and dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].rstrip("-")


def _notices(card: CardData) -> list[str]:
    book = card.character_book
    entries = book.get("entries") if isinstance(book, dict) else None
    if not book or entries == []:
        return []
    count = ""
    if isinstance(entries, list):
        count = f" ({len(entries)} {'entry' if len(entries) == 1 else 'entries'})"
    return [f"the card's lorebook{count} was not imported: qwenchat does not use lorebooks"]
