"""The parts of Textual that are not its public API, imported in this one place.

The reply view extends Textual's Markdown blocks (``textual.widgets._markdown``), and
the row compositor extends its compositor (``textual._compositor``); both are private
modules that may change in any release, which is why ``pyproject.toml`` pins Textual to
a minor version. The next upgrade starts here.
"""

from __future__ import annotations

from textual._compositor import ChopsUpdate, Compositor, CompositorMap, ReflowResult
from textual.widgets._markdown import (
    MarkdownBlock,
    MarkdownBullet,
    MarkdownBulletList,
    MarkdownList,
    MarkdownListItem,
    MarkdownOrderedList,
    MarkdownParagraph,
    MarkdownStream,
)

__all__ = [
    "ChopsUpdate",
    "Compositor",
    "CompositorMap",
    "MarkdownBlock",
    "MarkdownBullet",
    "MarkdownBulletList",
    "MarkdownList",
    "MarkdownListItem",
    "MarkdownOrderedList",
    "MarkdownParagraph",
    "MarkdownStream",
    "ReflowResult",
]
