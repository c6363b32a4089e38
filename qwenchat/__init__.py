"""qwenchat: chat with, and build agents on, local Qwen2.5 models.

The public Python API is :class:`qwenchat.Chat`. It is imported lazily so that
``import qwenchat`` (and so ``qwenchat --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Chat", "Reply", "__version__"]

if TYPE_CHECKING:
    from qwenchat.chat import Chat, Reply


def __getattr__(name: str) -> Any:
    if name in ("Chat", "Reply"):
        from qwenchat import chat

        return getattr(chat, name)
    raise AttributeError(f"module 'qwenchat' has no attribute {name!r}")
