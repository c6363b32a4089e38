"""Slash commands, their keys, the help screen and the command palette."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import OptionList, TextArea

from qwenchat.chatml import AssistantMessage, SystemMessage
from qwenchat.config import Settings
from qwenchat.opening import choose_role
from qwenchat.store import SessionStore
from qwenchat.tui.commands import COMMANDS
from qwenchat.tui.screens.help import HelpScreen
from qwenchat.tui.screens.picker import PickerScreen
from qwenchat.tui.screens.text_edit import TextEditScreen
from qwenchat.tui.widgets.prompt_input import PromptInput
from tests.fakes import ScriptedEngine
from tests.tui.conftest import SIZE, command, make_app, ready, replies, send, users, wait_for
from tests.unit.test_models import tiny_gguf

pytestmark = pytest.mark.asyncio

CODE_REPLY = (
    "Two blocks:\n```python\nprint('first')\n```\nand\n```sh\necho second\nls -l\n```\nDone."
)


async def test_help_opens_with_the_command_and_with_f1(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)
        assert app.query_one(PromptInput).text == ""
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert not isinstance(app.screen, HelpScreen)

        # In the input, "?" is a character, not the help key.
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        assert app.query_one(PromptInput).text == "?"


async def test_an_unknown_command_warns_and_the_app_goes_on(store: SessionStore) -> None:
    app = make_app(store, ["Still here."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for text, message in [
            ("/foo", "unknown command /foo"),
            ("/retry now", "/retry takes no argument"),
            ("/export pdf", "/export takes md|json"),
        ]:
            await command(pilot, text)
            assert any(message in m for m in app.tracked.messages("warning")), text
            assert app.query_one(PromptInput).text == text  # left to be corrected
        assert app.is_running and users(app) == []
        await send(pilot, "Hello")
        assert replies(app)[-1].text == "Still here."


async def test_system_sets_the_system_prompt(store: SessionStore) -> None:
    engine = ScriptedEngine(["First.", "Terse."])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Hello")
        old = app.state.session
        await command(pilot, "/system")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        editor = app.screen.query_one(TextArea)
        assert editor.text == ""  # no system prompt yet
        editor.text = "You are terse."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.state.session is None, "a new conversation")

        assert app.state.chat.messages == [SystemMessage(content="You are terse.")]
        assert users(app) == []
        assert any("starts a new session" in m for m in app.tracked.messages())
        await send(pilot, "Hi")
        assert "You are terse." in engine.prompts[-1]
        assert app.state.session is not None and app.state.session.id != old.id
        assert app.state.session.system_prompt == "You are terse."
        assert store.history(app.state.session.id)[0].content == "You are terse."
        assert len(store.list_sessions()) == 2

        # The editor starts from the prompt in use.
        await command(pilot, "/system")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        assert app.screen.query_one(TextArea).text == "You are terse."
        await pilot.press("escape")


async def test_persona_starts_a_session_with_its_greeting(store: SessionStore) -> None:
    engine = ScriptedEngine(["Aye, welcome aboard."])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/persona")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "" and {"captain", "socrates", "noir"} <= set(ids)
        options.highlighted = ids.index("captain")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.role.persona == "captain", "the persona")
        await wait_for(pilot, lambda: len(replies(app)) == 1, "the greeting")

        greeting = choose_role(Settings(), persona="captain").greeting
        assert greeting and greeting.startswith("The *Wayfarer*")
        assert replies(app)[0].text == greeting
        assert users(app) == []
        assert "persona captain" in str(app.status.render())
        assert app.state.chat.sampling.temperature == 0.9  # the persona's sampling

        await send(pilot, "I can read a compass.")
        assert app.state.session is not None and app.state.session.persona == "captain"
        stored = store.history(app.state.session.id)
        assert [m.role for m in stored] == ["system", "assistant", "user", "assistant"]
        assert stored[1].content == greeting
        assert "Captain Isolde Marrow" in engine.prompts[-1]

        # "(none)" goes back to the default assistant.
        await command(pilot, "/persona")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        assert app.screen.query_one(OptionList).highlighted == ids.index("captain")
        app.screen.query_one(OptionList).highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.role.persona is None, "no persona")
        assert replies(app) == [] and app.state.session is None


async def test_export_writes_the_conversation(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    app = make_app(store, ["The answer is 42."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/export")
        assert any("nothing to export" in m for m in app.tracked.messages("warning"))
        await send(pilot, "Life, the universe?")
        await command(pilot, "/export md")
        await wait_for(pilot, lambda: list(out.glob("*.md")), "the file")
        [path] = out.glob("*.md")
        assert path.name == f"qwenchat-{app.state.session.id}-life-the-universe.md"
        text = path.read_text(encoding="utf-8")
        assert "Life, the universe?" in text and "The answer is 42." in text
        assert f"saved {path}" in app.tracked.messages()

        await command(pilot, "/export json")
        await wait_for(pilot, lambda: list(out.glob("*.json")), "the JSON file")
        [path] = out.glob("*.json")
        assert "The answer is 42." in path.read_text(encoding="utf-8")


async def test_copy_the_reply_or_its_last_code_block(store: SessionStore) -> None:
    app = make_app(store, [CODE_REPLY])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/copy")
        assert any("no reply to copy" in m for m in app.tracked.messages("warning"))
        await send(pilot, "Show me code")
        await command(pilot, "/copy")
        assert app.clipboard == CODE_REPLY
        await command(pilot, "/copy code")
        assert app.clipboard == "echo second\nls -l"
        app.copy_to_clipboard("")
        await pilot.press("f3")
        assert app.clipboard == CODE_REPLY


async def test_copy_pick_copies_any_message_or_code_block(store: SessionStore) -> None:
    app = make_app(store, [CODE_REPLY, "Second answer."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/copy pick")
        assert any("nothing to copy" in m for m in app.tracked.messages("warning"))
        await send(pilot, "Show me code")
        await send(pilot, "And then?")
        await command(pilot, "/copy pick")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        # Newest first: each message, and each code block of a reply after it.
        assert labels == [
            "reply (1 line): Second answer.",
            "you (1 line): And then?",
            "code sh (2 lines): echo second",
            "code python (1 line): print('first')",
            "reply (10 lines): Two blocks:",
            "you (1 line): Show me code",
        ]
        options.highlighted = labels.index("code python (1 line): print('first')")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.clipboard == "print('first')", "the copy")
        assert not isinstance(app.screen, PickerScreen)


async def test_copy_code_without_a_code_block_warns(store: SessionStore) -> None:
    app = make_app(store, ["Just prose."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Hi")
        await command(pilot, "/copy code")
        assert any("no code block" in m for m in app.tracked.messages("warning"))
        assert app.clipboard == ""


async def test_clear_starts_afresh_with_the_same_system_prompt(store: SessionStore) -> None:
    engine = ScriptedEngine(["Yes.", "Sure."])
    app = make_app(store, engine=engine, system="Be brief.")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Hello?")
        first = app.state.session
        await command(pilot, "/clear")
        await wait_for(pilot, lambda: app.state.session is None, "a new conversation")
        assert users(app) == [] and replies(app) == []
        assert app.state.chat.messages == [SystemMessage(content="Be brief.")]
        await send(pilot, "Again?")
        assert app.state.session.id != first.id
        assert app.state.session.system_prompt == "Be brief."
        assert len(store.list_sessions()) == 2

        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.state.session is None, "a new conversation")
        assert app.state.chat.messages == [SystemMessage(content="Be brief.")]


async def test_model_with_no_models_warns(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/model")
        assert any("no models in" in m for m in app.tracked.messages("warning"))
        assert not isinstance(app.screen, PickerScreen)


async def test_model_lists_the_models_by_name_and_size(store: SessionStore, tmp_path: Path) -> None:
    models = tmp_path / "data" / "models"  # the data dir the autouse fixture set
    models.mkdir(parents=True)
    (models / "tiny-q4_k_m.gguf").write_bytes(tiny_gguf() + bytes(3 << 20))
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/model")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        option = app.screen.query_one(OptionList).get_option_at_index(0)
        assert option.id == str(models / "tiny-q4_k_m.gguf")
        label = option.prompt
        assert label.plain == "tiny-q4_k_m  3 MiB"  # type: ignore[union-attr]
        assert any(span.style == "dim" for span in label.spans)  # type: ignore[union-attr]


async def test_the_palette_lists_the_slash_commands(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")

        def shown() -> list[str]:
            options = app.screen.query_one(CommandList)
            return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

        await wait_for(pilot, lambda: any("/help" in p for p in shown()), "the commands")
        for cmd in COMMANDS:
            assert any(f"/{cmd.name}" in p for p in shown()), cmd.name

        await pilot.press(*"tools")
        await wait_for(pilot, lambda: shown() and "/tools" in shown()[0], "the search")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.tools_on, "the tools to go on")
        assert not isinstance(app.screen, CommandPalette)


async def test_quit(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/quit")
        await wait_for(pilot, lambda: not app.is_running, "the app to quit")


async def test_the_greeting_only_session_is_not_saved(store: SessionStore) -> None:
    app = make_app(store, ["unused"], persona="noir")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(replies(app)) == 1, "the greeting")
        assert isinstance(app.state.chat.messages[-1], AssistantMessage)
        assert store.list_sessions() == []
