"""Personas: the shipped ones, variables, the user's winning, card import, bad files, the CLI."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qwenchat.cli.personas import app
from qwenchat.config import Sampling
from qwenchat.errors import ConfigError, InputError
from qwenchat.personas import (
    Persona,
    builtin_dir,
    get_persona,
    import_card,
    list_personas,
    load_persona_file,
    save_persona,
    user_dir,
)

CARD_DATA: dict[str, Any] = {
    "name": "Seraphina",
    "description": "{{char}} is a forest guardian.",
    "personality": "kind, protective",
    "scenario": "{{user}} wakes up in {{char}}'s glade.",
    "first_mes": "*{{char}} smiles.* Hello, {{user}}.",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A guardian.\n"
    "<START>\n{{user}}: Hi\n{{char}}: Hello",
    "system_prompt": "{{original}} Write vividly.",
    "post_history_instructions": "{{original}} Stay in character.",
    "alternate_greetings": ["Oh, {{user}}, you are awake."],
    "creator_notes": "made for testing",
    "tags": ["fantasy"],
    "extensions": {"depth_prompt": {"prompt": "Be kind.", "depth": 4}},
}
EXPECTED_SYSTEM = (
    "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}. "
    "Write vividly.\n\n"
    "{{char}} is a forest guardian.\n\n"
    "{{char}}'s personality: kind, protective\n\n"
    "Scenario: {{user}} wakes up in {{char}}'s glade.\n\n"
    "Example dialogue:\n\n"
    "{{user}}: Who are you?\n{{char}}: A guardian.\n\n"
    "{{user}}: Hi\n{{char}}: Hello"
)
LOREBOOK = {"entries": [{"keys": ["glade"], "content": "A hidden glade."}]}


def v2_card(**data: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {**CARD_DATA, **data}}


def v3_card(**data: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": {**CARD_DATA, **data}}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(*text_chunks: tuple[str, bytes]) -> bytes:
    """A 1x1 grey PNG with these tEXt chunks after the image data, where card tools put them."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    texts = b"".join(png_chunk(b"tEXt", key.encode() + b"\0" + text) for key, text in text_chunks)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0\x80"))
        + texts
        + png_chunk(b"IEND", b"")
    )


def b64(card: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(card).encode())


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))


def write(path: Path, content: bytes | str | dict[str, Any]) -> Path:
    if isinstance(content, dict):
        content = json.dumps(content)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def assert_one_line_naming(exc: BaseException, path: Path, message: str) -> None:
    text = str(exc)
    assert message in text and str(path) in text and "\n" not in text, text


# --- the library ---------------------------------------------------------------------------


def test_the_shipped_personas_load_render_and_round_trip(tmp_path: Path) -> None:
    personas = list_personas()
    assert {"captain", "socrates", "noir"} <= set(personas)
    for persona in personas.values():
        assert persona.path is not None and persona.path.parent == builtin_dir()
        assert persona.description and "{{user}}" in persona.greeting and persona.tools == []
        rendered = persona.render(user_name="Ann")
        assert "Ann" in rendered.greeting and persona.char_name in rendered.system_prompt
        assert "{{" not in rendered.greeting + rendered.system_prompt
        copy = load_persona_file(write(tmp_path / f"{persona.name}.md", persona.to_markdown()))
        assert copy.model_dump(exclude={"path"}) == persona.model_dump(exclude={"path"})
        assert copy.sampling.model_fields_set == persona.sampling.model_fields_set
    assert get_persona("captain").sampling.temperature == 0.9


def test_variables_are_filled_case_insensitively() -> None:
    persona = Persona(
        name="guide",
        system_prompt="{{CHAR}} meets {{ user }} on {{Date}} at {{ TIME }}; {{other}} stays.",
        greeting="Hi {{User}}, I am {{char}}.",
        alternate_greetings=["Bye {{USER}}"],
        post_history_instructions="Remember {{user}}.",
    )
    rendered = persona.render(now=datetime(2024, 3, 5, 14, 7))
    assert rendered.system_prompt == "guide meets User on March 5, 2024 at 14:07; {{other}} stays."
    assert rendered.greeting == "Hi User, I am guide."
    assert rendered.alternate_greetings == ["Bye User"]
    assert rendered.post_history_instructions == "Remember User."
    named = persona.model_copy(update={"char_name": "Ava", "user_name": "Cy"})
    assert named.render().greeting == "Hi Cy, I am Ava."
    assert named.render(user_name="Bo").greeting == "Hi Bo, I am Ava."


def test_sampling_keys_override_only_what_they_set() -> None:
    path = write(user_dir() / "calm.md", "---\ntemperature: 0.2\nseed: 7\n---\nBe calm.\n")
    persona = load_persona_file(path)
    assert persona.name == "calm" and persona.tools is None
    merged = persona.sampling_over(Sampling(top_k=5, temperature=1.0))
    assert (merged.temperature, merged.seed, merged.top_k) == (0.2, 7, 5)


def test_the_users_persona_wins() -> None:
    write(user_dir() / "captain.md", "---\ndescription: mine\n---\nYou are {{char}}.\n")
    assert get_persona("captain").system_prompt == "You are {{char}}."
    assert list_personas()["captain"].description == "mine"
    assert list_personas()["captain"].path == user_dir() / "captain.md"


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no persona named 'nope' \(there are: .*captain"):
        get_persona("nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("---\nname: [unclosed\n---\nHi", "broken YAML front matter"),
        ("---\ngreeting: hello\n---\n  \n", "has no system prompt"),
        ("---\ncolour: red\n---\nHi", "'colour': Extra inputs are not permitted"),
        ("---\ntemperature: 9\n---\nHi", "'temperature': Input should be less than"),
        ("---\ntools: calculator\n---\nHi", "'tools'"),
        (b"\xff\xfe", "cannot read"),
        ("---\n---\n" + "x" * (1024 * 1024), "is over 1024 KiB"),
    ],
)
def test_bad_persona_files_are_one_line_naming_the_file(content: str | bytes, message: str) -> None:
    path = write(user_dir() / "bad.md", content)
    with pytest.raises(ConfigError) as info:
        load_persona_file(path)
    assert_one_line_naming(info.value, path, message)


# --- character cards -----------------------------------------------------------------------


def test_a_v2_json_card_becomes_a_persona(tmp_path: Path) -> None:
    path = write(tmp_path / "Seraphina.json", v2_card())
    persona, notices = import_card(path)
    assert notices == []
    assert (persona.name, persona.char_name) == ("seraphina", "Seraphina")
    assert persona.system_prompt == EXPECTED_SYSTEM
    assert persona.greeting == CARD_DATA["first_mes"]
    assert persona.alternate_greetings == CARD_DATA["alternate_greetings"]
    assert persona.post_history_instructions == "Stay in character."
    assert "Character Card V2" in persona.description
    rendered = persona.render(user_name="Ann")
    assert rendered.greeting == "*Seraphina smiles.* Hello, Ann."


def test_unknown_card_fields_are_kept(tmp_path: Path) -> None:
    persona, _ = import_card(write(tmp_path / "c.json", v2_card(creator="me")))
    assert persona.extra == {
        "creator_notes": "made for testing",
        "tags": ["fantasy"],
        "extensions": CARD_DATA["extensions"],
        "creator": "me",
    }


def test_a_v3_json_card_uses_its_nickname(tmp_path: Path) -> None:
    card = v3_card(nickname="Sera", assets=[{"type": "icon", "uri": "ccdefault:"}])
    persona, _ = import_card(write(tmp_path / "c.json", card))
    assert (persona.name, persona.char_name) == ("seraphina", "Sera")
    assert persona.extra["assets"] == card["data"]["assets"]
    assert "Character Card V3" in persona.description


def test_a_v1_card_has_its_fields_at_the_top(tmp_path: Path) -> None:
    keys = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
    card = {key: CARD_DATA[key] for key in keys} | {"avatar": "none", "chat": "x"}
    persona, _ = import_card(write(tmp_path / "v1.json", card))
    assert persona.system_prompt.startswith("Write {{char}}'s next reply")
    assert persona.system_prompt.endswith("{{char}}: Hello")
    assert "Scenario: {{user}} wakes up" in persona.system_prompt
    assert persona.extra == {"avatar": "none", "chat": "x"}


@pytest.mark.parametrize(
    ("chunks", "char_name"),
    [
        ([("chara", b64(v2_card()))], "Seraphina"),
        ([("ccv3", b64(v3_card(name="Nova")))], "Nova"),
        ([("ccv3", b64(v3_card(name="Nova"))), ("chara", b64(v2_card()))], "Nova"),
        ([("chara", b64(v2_card())), ("ccv3", b64(v3_card(name="Nova")))], "Nova"),
    ],
    ids=["v2", "v3", "ccv3-first", "chara-first"],
)
def test_png_cards_and_ccv3_wins(
    tmp_path: Path, chunks: list[tuple[str, bytes]], char_name: str
) -> None:
    persona, _ = import_card(write(tmp_path / "card.png", png(("Software", b"x"), *chunks)))
    assert persona.char_name == char_name and persona.system_prompt == EXPECTED_SYSTEM


def test_a_lorebook_is_dropped_with_a_notice(tmp_path: Path) -> None:
    persona, notices = import_card(write(tmp_path / "c.json", v2_card(character_book=LOREBOOK)))
    assert notices == [
        "the card's lorebook (1 entry) was not imported: qwenchat does not use lorebooks"
    ]
    assert "character_book" not in persona.extra


def test_an_imported_card_is_saved_and_listed(tmp_path: Path) -> None:
    persona, _ = import_card(write(tmp_path / "c.json", v3_card(nickname="Sera")), name="sera")
    path = save_persona(persona)
    assert path == user_dir() / "sera.md"
    loaded = get_persona("sera")
    assert loaded.model_dump(exclude={"path"}) == persona.model_dump(exclude={"path"})
    assert "sera" in list_personas()
    with pytest.raises(ConfigError, match="already exists"):
        save_persona(persona)


GOOD_PNG = png(("chara", b64(v2_card())))
HALF_JSON = json.dumps(v2_card())[:40]


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("a.png", png(("Software", b"paint")), "no 'chara' or 'ccv3' tEXt chunk"),
        ("a.png", GOOD_PNG[:-30], "the PNG is truncated"),
        ("a.png", png(("chara", b"not*base64!")), "'chara' chunk is not valid base64"),
        ("a.png", png(("ccv3", b64(v3_card())[:-3])), "'ccv3' chunk is not valid base64"),
        ("a.png", png(("chara", base64.b64encode(HALF_JSON.encode()))), "not valid JSON"),
        ("a.png", b"GIF89a, not a PNG", "is not a PNG image"),
        ("a.json", HALF_JSON, "not valid JSON"),
        ("a.json", "[1, 2]", "not a JSON object"),
        ("a.json", v2_card() | {"spec": "chara_card_v9"}, "unsupported spec 'chara_card_v9'"),
        ("a.json", {"spec": "chara_card_v2"}, "'data' is missing"),
        ("a.json", {"spec": "chara_card_v3", "data": {"first_mes": "hi"}}, "'data.name'"),
        ("a.json", {"name": "x", "alternate_greetings": "hi"}, "'alternate_greetings'"),
        ("a.json", {"name": "???"}, "cannot make a persona name"),
        ("a.webp", b"RIFF", "expected a .png or .json"),
    ],
)
def test_bad_cards_are_one_line_naming_the_file(
    tmp_path: Path, filename: str, content: bytes | str | dict[str, Any], message: str
) -> None:
    path = write(tmp_path / filename, content)
    with pytest.raises(InputError) as info:
        import_card(path)
    assert_one_line_naming(info.value, path, message)


@pytest.mark.parametrize(
    ("filename", "size", "message"),
    [("big.png", 10 * 1024 * 1024 + 1, "over 10 MiB"), ("big.json", 1024 * 1024 + 1, "over 1 MiB")],
)
def test_oversized_and_missing_cards(
    tmp_path: Path, filename: str, size: int, message: str
) -> None:
    path = write(tmp_path / filename, GOOD_PNG)
    with path.open("r+b") as file:
        file.truncate(size)  # sparse: nothing is read before the size check
    with pytest.raises(InputError) as info:
        import_card(path)
    assert_one_line_naming(info.value, path, message)
    with pytest.raises(InputError) as info:
        import_card(tmp_path / "gone.json")
    assert_one_line_naming(info.value, tmp_path / "gone.json", "cannot read character card")


# --- the CLI -------------------------------------------------------------------------------


def test_personas_cli_list_show_import(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and "socrates" in listed.stdout
    shown = runner.invoke(app, ["show", "noir"])
    assert shown.exit_code == 0 and shown.stdout.startswith("---\nname: noir\n")
    assert shown.stdout == get_persona("noir").to_markdown()

    card = write(tmp_path / "card.png", png(("chara", b64(v2_card(character_book=LOREBOOK)))))
    imported = runner.invoke(app, ["import", str(card)])
    assert imported.exit_code == 0, imported.output
    assert f"imported 'seraphina' to {user_dir() / 'seraphina.md'}" in imported.stdout
    assert "note: the card's lorebook (1 entry) was not imported" in imported.stderr
    assert "seraphina" in runner.invoke(app, ["list"]).stdout
    assert runner.invoke(app, ["show", "seraphina"]).stdout.startswith("---\nname: seraphina\n")

    again = runner.invoke(app, ["import", str(card)])
    assert isinstance(again.exception, ConfigError) and "already exists" in str(again.exception)
    renamed = runner.invoke(app, ["import", str(card), "--name", "sera2"])
    assert renamed.exit_code == 0 and (user_dir() / "sera2.md").is_file()
    bad = runner.invoke(app, ["import", str(write(tmp_path / "x.png", b"nope"))])
    assert isinstance(bad.exception, InputError) and "is not a PNG image" in str(bad.exception)
