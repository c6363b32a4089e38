"""Editing one key of config.toml in place: ``models default`` and the TUI's theme."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qwenchat.config import load_settings, save_theme, set_config_value
from qwenchat.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def edited(tmp_path: Path, text: str | None, key: str, value: str, table: str | None = None) -> str:
    path = tmp_path / "config.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    set_config_value(key, value, table=table, path=path)
    return path.read_text(encoding="utf-8")


def test_a_new_file(tmp_path: Path) -> None:
    assert edited(tmp_path / "new", None, "model", "qwen") == 'model = "qwen"\n'


def test_the_key_goes_at_the_top_level_before_the_first_table(tmp_path: Path) -> None:
    text = '# mine\nmodels_dir = "~/m"  # here\n\n# sampling\n[sampling]\ntemperature = 0.2\n'
    assert edited(tmp_path, text, "model", "qwen") == (
        '# mine\nmodels_dir = "~/m"  # here\n\n# sampling\nmodel = "qwen"\n\n[sampling]\n'
        "temperature = 0.2\n"
    )


def test_a_file_that_starts_with_a_table(tmp_path: Path) -> None:
    assert edited(tmp_path, "[sampling]\ntop_k = 5\n", "model", "q") == (
        'model = "q"\n\n[sampling]\ntop_k = 5\n'
    )


def test_the_key_is_replaced_in_place_and_keeps_its_comment(tmp_path: Path) -> None:
    text = 'model = "old"  # was\nsystem_prompt = "hi"\n[ui]\ntheme = "nord"\n'
    assert edited(tmp_path, text, "model", 'a "quoted" \\ name') == (
        'model = "a \\"quoted\\" \\\\ name"  # was\nsystem_prompt = "hi"\n[ui]\ntheme = "nord"\n'
    )


def test_lines_inside_a_multi_line_string_are_not_keys_or_tables(tmp_path: Path) -> None:
    text = 'system_prompt = """\nmodel = "not this"\n[rules]\nbe brief\n"""\n[ui]\ntheme = "x"\n'
    result = edited(tmp_path, text, "model", "qwen")
    data = tomllib.loads(result)
    assert data["model"] == "qwen" and 'model = "not this"\n[rules]' in data["system_prompt"]
    assert result.startswith(text.split("[ui]")[0])


def test_an_inline_table_is_edited_where_it_is(tmp_path: Path) -> None:
    assert edited(tmp_path, 'ui = { theme = "nord" }\n', "theme", "x", table="ui") == (
        'ui = { theme = "x" }\n'
    )


def test_an_edit_that_would_change_other_settings_is_refused(tmp_path: Path) -> None:
    text = 'ui = "nord"\n'  # not a table: setting [ui] theme would replace it
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"cannot update .* safely; add theme = \"x\" under \[ui\]"
    ):
        set_config_value("theme", "x", table="ui", path=path)
    assert path.read_text(encoding="utf-8") == text
    with pytest.raises(OSError, match="cannot update"):  # what the TUI expects from save_theme
        save_theme("x", path)


def test_an_invalid_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("model = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        set_config_value("model", "x", path=path)
    assert path.read_text(encoding="utf-8") == "model = \n"


def test_save_theme_adds_and_replaces_its_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "m"\n', encoding="utf-8")
    save_theme("nord", path)
    assert path.read_text(encoding="utf-8") == 'model = "m"\n\n[ui]\ntheme = "nord"\n'
    save_theme("gruvbox", path)
    assert path.read_text(encoding="utf-8") == 'model = "m"\n\n[ui]\ntheme = "gruvbox"\n'
    set_config_value("model", "other", path=path)
    assert load_settings(path).model == "other" and load_settings(path).ui.theme == "gruvbox"
