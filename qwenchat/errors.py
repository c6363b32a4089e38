"""Errors that reach the user as one line.

Every failure a user can cause or fix is a :class:`QwenchatError`; its message is
a single line saying what is wrong and what to do. The CLI prints it to stderr
and exits with :attr:`QwenchatError.exit_code`; the TUI shows it as a notification.
"""

from __future__ import annotations

from collections.abc import Callable


class QwenchatError(Exception):
    """Base class: a failure with a one-line, user-facing message."""

    exit_code = 1


class InputError(QwenchatError):
    """Bad usage or bad input (a file, a flag, a prompt): exit code 2."""

    exit_code = 2


class ConfigError(InputError):
    """The config file is unreadable or invalid."""


class ModelError(InputError):
    """A model file is missing, not a GGUF, truncated, or cannot be loaded."""


class GenerationError(QwenchatError):
    """The model failed while generating: exit code 1."""


class DownloadError(QwenchatError):
    """Getting a model from the hub failed (network, server, checksum): exit code 1."""


class EngineConnectionError(GenerationError):
    """A remote engine's server could not be reached, timed out, refused a request or
    broke off a reply: exit code 1; the conversation goes on once it is back."""


Warn = Callable[[str], None]
"""Where a one-line warning goes (stderr in ``ask``, a notification in the TUI)."""
