"""A sandboxed, warm Python interpreter for running model-written code (tool-integrated reasoning).

:class:`Sandbox` runs code as notebook cells in one persistent interpreter, isolated by
the strongest layer that works here (:func:`detect_layer`: bubblewrap, else resource
limits only) and returns an :class:`ExecResult`. See ``jail.py`` for the layers and
``kernel.py`` for the interpreter and its protocol.
"""

from __future__ import annotations

from qwenchat.sandbox.client import ExecResult, Sandbox
from qwenchat.sandbox.jail import SandboxError, SandboxLayer, detect_layer

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxLayer", "detect_layer"]
