"""The theme: chosen in the app, remembered in the config file, used at the next start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenchat.config import load_settings
from qwenchat.store import SessionStore
from tests.tui.conftest import SIZE, make_app, ready, wait_for

pytestmark = pytest.mark.asyncio


async def test_the_theme_is_remembered(store: SessionStore) -> None:
    config = Path(os.environ["QWENCHAT_CONFIG_DIR"]) / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('# my settings\nsystem_prompt = "Be kind."\n', encoding="utf-8")

    app = make_app(store, ["unused"], settings=load_settings())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.theme == "textual-dark"
        app.theme = "nord"
        await wait_for(pilot, lambda: 'theme = "nord"' in config.read_text(), "the config file")
    text = config.read_text(encoding="utf-8")
    assert text.startswith('# my settings\nsystem_prompt = "Be kind."\n')  # the rest is kept
    assert '[ui]\ntheme = "nord"' in text
    settings = load_settings()
    assert settings.ui.theme == "nord" and settings.system_prompt == "Be kind."

    again = make_app(store, ["unused"], settings=settings)
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert again.theme == "nord"
        again.theme = "gruvbox"
        await wait_for(pilot, lambda: 'theme = "gruvbox"' in config.read_text(), "the change")
    assert load_settings().ui.theme == "gruvbox"
    assert config.read_text(encoding="utf-8").count("theme =") == 1
