"""Shared by the sandbox tests: skip a layer this machine cannot run."""

from __future__ import annotations

import pytest

from qwenchat.sandbox import detect_layer


def skip_unless_usable(layer: str) -> None:
    """Skip the test, with the reason, when ``layer`` cannot run on this machine."""
    detected = detect_layer()
    if layer == "bubblewrap" and detected.name != "bubblewrap":
        pytest.skip(f"bubblewrap does not work here: {detected.reason}")
    if layer == "rlimits" and detected.name == "none":
        pytest.skip(f"no rlimits layer here: {detected.reason}")
