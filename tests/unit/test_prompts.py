"""The prompts library: built-in files, the user's overriding them, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.errors import ConfigError
from qwenchat.prompts import builtin_dir, get_prompt, list_prompts, load_prompt_file


@pytest.fixture
def user_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path))
    (tmp_path / "prompts").mkdir()
    return tmp_path / "prompts"


def test_builtin_prompts_load(user_prompts: Path) -> None:
    prompts = list_prompts()
    assert {"tir-math", "math-cot"} <= set(prompts)
    for prompt in prompts.values():
        assert prompt.text and prompt.description and prompt.path is not None
        assert prompt.path.parent == builtin_dir()
    assert get_prompt("tir-math").text.startswith("Please integrate natural language reasoning")


def test_the_users_prompt_wins(user_prompts: Path) -> None:
    (user_prompts / "tir-math.md").write_text("---\ndescription: mine\n---\nUse code.\n")
    assert get_prompt("tir-math").text == "Use code."
    assert list_prompts()["tir-math"].description == "mine"


def test_a_file_without_front_matter_is_all_prompt(user_prompts: Path) -> None:
    (user_prompts / "terse.md").write_text("Answer in one word.\n")
    assert get_prompt("terse").text == "Answer in one word."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("---\nname: [unclosed\n---\nHi", "broken YAML front matter"),
        ("---\nname: x\nHi", "no closing '---'"),
        ("---\n- a list\n---\nHi", "not a mapping"),
        ("---\ncolour: red\n---\nHi", "'colour': Extra inputs are not permitted"),
        ("---\ndescription: empty\n---\n", "'text'"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(
    user_prompts: Path, content: str | bytes, message: str
) -> None:
    path = user_prompts / "bad.md"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as info:
        load_prompt_file(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unknown_name_lists_the_known_ones(user_prompts: Path) -> None:
    with pytest.raises(ConfigError, match=r"no prompt named 'nope' .*tir-math"):
        get_prompt("nope")


def test_the_library_has_the_system_prompts_users_expect(user_prompts: Path) -> None:
    from qwenchat.chatml import DEFAULT_SYSTEM

    expected = {"assistant", "coder", "json-extractor", "translator", "shell", "tir-math"}
    assert expected <= set(list_prompts())
    assert get_prompt("assistant").text == DEFAULT_SYSTEM  # the template's own default


def test_prompts_cli_and_ask_prompt_flag(tmp_path: Path) -> None:
    from tests.unit.test_cli import run_cli

    env = {"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_DATA_DIR": str(tmp_path)}
    shown = run_cli("prompts", "show", "tir-math", env=env)
    assert shown.returncode == 0 and shown.stdout.strip() == get_prompt("tir-math").text
    listed = run_cli("prompts", "list", env=env)
    assert "json-extractor" in listed.stdout
    both = run_cli("ask", "--prompt", "coder", "--system", "x", "hi", env=env)
    assert (
        both.returncode == 2
        and "only one of a system prompt, a library prompt and a persona" in both.stderr
    )
    unknown = run_cli("ask", "--prompt", "nope", "hi", env=env)
    assert unknown.returncode == 2 and "no prompt named 'nope'" in unknown.stderr
