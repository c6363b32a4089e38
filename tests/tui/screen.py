"""The text a Pilot test's screen shows, read the one way Textual offers.

Textual has no public call that returns a screen's text (``export_screenshot`` gives
SVG), so this is the one place the tests read it off the screen's compositor: the
next Textual upgrade that changes it touches this file only.
"""

from __future__ import annotations

from textual.app import App


def screen_text(app: App[None]) -> str:
    """The lines the app's current screen draws, as text, joined by newlines."""
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())
