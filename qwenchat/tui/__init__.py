"""The Textual TUI: ``qwenchat`` and ``qwenchat chat``.

The app (:mod:`qwenchat.tui.app`) is a shell over the core; its widgets live in
:mod:`qwenchat.tui.widgets` and its dialogs, one per module, in :mod:`qwenchat.tui.screens`.
"""
