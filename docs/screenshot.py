"""Draw docs/screenshot.svg: the TUI on the real test model, in TIR mode, after one answer.

    QWENCHAT_MODEL=/path/to/the-test-model.gguf .venv/bin/python docs/screenshot.py

The session goes into a throw-away data dir; the config is greedy sampling.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

PROMPT = "What is 987654321 * 123456789?"
OUT = Path(__file__).with_name("screenshot.svg")


async def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="qwenchat-shot-"))
    (scratch / "config.toml").write_text("[sampling]\ntemperature = 0\n", encoding="utf-8")
    os.environ |= {"QWENCHAT_CONFIG_DIR": str(scratch), "QWENCHAT_DATA_DIR": str(scratch)}
    from qwenchat.config import load_settings
    from qwenchat.tui.app import Launch, QwenchatApp

    app = QwenchatApp(Launch(settings=load_settings(), tir=True))
    async with app.run_test(size=(110, 38)) as pilot:
        while app.state.chat is None or app.state.code_ok is None:
            await pilot.pause(0.1)
        app.query_one("#input").insert(PROMPT)  # type: ignore[attr-defined]
        await pilot.press("enter")
        deadline = time.monotonic() + 300
        while app.stream is not None and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await pilot.pause(0.5)
        app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
