"""A sandboxed, warm Python interpreter for running model-written code (tool-integrated reasoning).

:class:`Sandbox` runs code as notebook cells in one persistent interpreter, isolated by
the strongest layer that works here (:func:`detect_layer`: bubblewrap, else resource
limits only) and returns an :class:`ExecResult`. See ``jail.py`` for the layers,
``kernel.py`` for the interpreter and its protocol, and ``limits.py`` for the limits.
The names below are imported on first use, so reading the config's ``[sandbox]``
section (which needs only ``limits``) does not load the launcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qwenchat.sandbox.client import ExecResult, Sandbox
    from qwenchat.sandbox.jail import SandboxError, SandboxLayer, detect_layer

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxLayer", "detect_layer"]


def __getattr__(name: str) -> Any:
    if name in ("ExecResult", "Sandbox"):
        from qwenchat.sandbox import client

        return getattr(client, name)
    if name in ("SandboxError", "SandboxLayer", "detect_layer"):
        from qwenchat.sandbox import jail

        return getattr(jail, name)
    raise AttributeError(f"module 'qwenchat.sandbox' has no attribute {name!r}")
