"""Shared by the sandbox tests: skip a layer this machine cannot run.

``QWENCHAT_TEST_REQUIRE_SANDBOX=bubblewrap`` (set by ``.ci/run``) turns the skip of
a required layer into a failure, so CI cannot pass with the escape tests skipped.
"""

from __future__ import annotations

import os

import pytest

from qwenchat.sandbox import detect_layer


def skip_unless_usable(layer: str) -> None:
    """Skip the test, with the reason, when ``layer`` cannot run on this machine."""
    detected = detect_layer()
    if layer == "bubblewrap" and detected.name != "bubblewrap":
        reason = f"bubblewrap does not work here: {detected.reason}"
        if os.environ.get("QWENCHAT_TEST_REQUIRE_SANDBOX") == "bubblewrap":
            pytest.fail(f"{reason} (QWENCHAT_TEST_REQUIRE_SANDBOX=bubblewrap)")
        pytest.skip(reason)
    if layer == "rlimits" and detected.name == "none":
        pytest.skip(f"no rlimits layer here: {detected.reason}")
