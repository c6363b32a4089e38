"""The known-answer check: its verdicts on scripted replies, and a child that crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenchat.engine.selfcheck import PROBES, check_in_child, known_answer
from tests.fakes import ScriptedEngine


def test_right_answers_pass_and_every_probe_is_asked() -> None:
    engine = ScriptedEngine(["Paris", "15, 18, 21"])
    verdict = known_answer(engine)
    assert verdict.ok and verdict.detail == "2 of 2 known answers right"
    assert len(engine.prompts) == len(PROBES)
    assert all(p.question in prompt for p, prompt in zip(PROBES, engine.prompts, strict=True))


@pytest.mark.parametrize(
    "replies",
    [
        ["mpegmpeg"],  # what the AMX path wrote on a Sapphire Rapids VM
        ["Paris", "151, 18, 21"],  # the word must stand alone, not inside a number
        ["Comparison"],  # nor inside another word
    ],
)
def test_a_wrong_answer_fails_and_says_what_came_out(replies: list[str]) -> None:
    verdict = known_answer(ScriptedEngine(replies))
    assert not verdict.ok
    assert repr(replies[-1]) in verdict.detail and "expected" in verdict.detail


def test_the_models_text_is_shown_escaped() -> None:
    verdict = known_answer(ScriptedEngine(["\x1b]0;owned\x07\x1b[2J"]))
    assert not verdict.ok and "\x1b" not in verdict.detail and "\\x1b" in verdict.detail


@pytest.fixture
def crashing_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the check's child (and only it) die of SIGSEGV at start-up, as a broken
    llama.cpp build does when it loads a model."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "if 'qwenchat.engine.selfcheck' in sys.orig_argv:\n"
        "    import ctypes\n"
        "    ctypes.string_at(0)\n"
    )
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{path}" if path else str(tmp_path))


@pytest.mark.usefixtures("crashing_child")
def test_a_crash_in_the_child_is_a_verdict_naming_the_signal() -> None:
    verdict = check_in_child("no-such-model")
    assert not verdict.ok and verdict.crashed == "SIGSEGV"
    assert verdict.detail == "llama.cpp crashed (SIGSEGV) on a known-answer completion"


def test_a_model_that_does_not_load_is_its_error_line(tmp_path: Path) -> None:
    env = {"QWENCHAT_CONFIG_DIR": str(tmp_path), "QWENCHAT_DATA_DIR": str(tmp_path)}
    verdict = check_in_child(tmp_path / "missing.gguf", env=env)
    assert not verdict.ok and verdict.crashed is None
    assert "missing.gguf" in verdict.detail


def test_a_hung_child_times_out(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, time\nif 'qwenchat.engine.selfcheck' in sys.orig_argv:\n    time.sleep(60)\n"
    )
    verdict = check_in_child("m", timeout=2, env={"PYTHONPATH": str(tmp_path)})
    assert not verdict.ok and verdict.detail == "no answer within 2 s"
