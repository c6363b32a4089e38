"""The llama.cpp build on the real test model: known answers, and the AMX guard's load.

A build that computes garbage on this CPU fails here by name (and conftest stops the
whole run before the model tests, see ``test_model_path``), instead of as a hundred
plausible-looking failures elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenchat.engine.llama import LlamaEngine
from qwenchat.engine.llama_build import BuildInfo, build_info
from qwenchat.engine.selfcheck import check_in_child, known_answer
from tests.unit.test_cli import run_cli
from tests.unit.test_llama_build import WITH_AMX

pytestmark = pytest.mark.model


def test_the_test_model_gives_the_known_answers(test_model_path: Path) -> None:
    engine = LlamaEngine(test_model_path, n_ctx=1024)
    assert engine.extra_buffers == (not build_info().amx)  # the guard is off on sound builds
    verdict = known_answer(engine)
    assert verdict.ok, verdict.detail


def test_the_check_in_a_child_process_passes(test_model_path: Path, tmp_path: Path) -> None:
    verdict = check_in_child(test_model_path, env={"QWENCHAT_CONFIG_DIR": str(tmp_path)})
    assert verdict.ok and verdict.crashed is None, verdict.detail


@pytest.fixture
def amx_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaded library reports AMX, as a build qwenchat did not make on an AMX CPU."""
    monkeypatch.setattr("qwenchat.engine.llama.build_info", lambda: BuildInfo.parse(WITH_AMX))


@pytest.mark.usefixtures("amx_build")
def test_an_amx_build_loads_without_extra_buffers_and_answers(test_model_path: Path) -> None:
    engine = LlamaEngine(test_model_path, n_ctx=1024)
    assert not engine.extra_buffers and engine.amx_guarded
    assert not engine._llm.model_params.use_extra_bufts  # what llama.cpp was given
    assert engine.build_note is not None and "engine.amx = true" in engine.build_note
    info = engine.info()  # what ask -v, doctor and the TUI's status bar show
    assert info.runs_on == "CPU (AMX off)" and info.notes == [engine.build_note]
    assert info.describe().endswith(engine.build_note) and info.path == test_model_path
    assert known_answer(engine).ok


@pytest.mark.usefixtures("amx_build")
def test_opting_in_keeps_extra_buffers(test_model_path: Path) -> None:
    engine = LlamaEngine(test_model_path, n_ctx=1024, amx=True)
    assert engine.extra_buffers and not engine.amx_guarded
    assert engine._llm.model_params.use_extra_bufts


@pytest.fixture
def amx_library(tmp_path: Path) -> dict[str, str]:
    """A qwenchat subprocess whose llama.cpp library reports AMX_INT8 in its system info."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import llama_cpp\nllama_cpp.llama_print_system_info = lambda: {WITH_AMX.encode()!r}\n"
    )
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{site}{os.pathsep}{path}" if path else str(site)}


def test_ask_verbose_says_the_guard_is_on_and_answers(
    model_env: dict[str, str], amx_library: dict[str, str]
) -> None:
    result = run_cli(
        "ask", "-v", "--temperature", "0", "--max-tokens", "8",
        "What is the capital of France? Answer with one word.",
        env={**model_env, **amx_library},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    note = next(line for line in result.stderr.splitlines() if "Intel AMX" in line)
    assert note.startswith("qwenchat: ")  # a line of its own, like every other
    assert "without extra buffer types" in note and "engine.amx = true" in note


def test_doctor_on_an_amx_build_warns_with_the_rebuild_command(
    model_env: dict[str, str], amx_library: dict[str, str]
) -> None:
    result = run_cli("doctor", "--no-generate", env={**model_env, **amx_library})
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " llama.cpp " in line)
    assert lines[at].startswith("warning") and "Intel AMX" in lines[at]
    assert "fix: rebuild without AMX: CMAKE_ARGS=" in lines[at + 1]
    assert "-mno-amx-int8" in lines[at + 1]
