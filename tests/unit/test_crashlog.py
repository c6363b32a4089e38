"""A run that dies in native code is reported by the next run, once, in one line."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_cli import run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
        "QWENCHAT_CACHE_DIR": str(tmp_path / "cache"),
    }


def crashes(env: dict[str, str]) -> Path:
    return Path(env["QWENCHAT_CACHE_DIR"]) / "crashes"


def test_a_segfault_is_reported_by_the_next_run_then_never_again(
    tmp_path: Path, env: dict[str, str]
) -> None:
    tools = tmp_path / "native"
    tools.mkdir()
    # A tool file is imported in qwenchat's own process: this one dies as a broken
    # llama.cpp kernel does, reading address 0.
    (tools / "broken.py").write_text("import ctypes\nctypes.string_at(0)\n")
    crashed = run_cli("tools", "list", "--tools-dir", str(tools), env=env)
    assert crashed.returncode == -signal.SIGSEGV, crashed.stderr

    after = run_cli("config", "path", env=env)
    assert after.returncode == 0
    last = crashes(env) / "last-crash.log"
    lines = after.stderr.splitlines()
    assert len(lines) == 1, after.stderr
    assert lines[0].startswith("qwenchat: warning: the last qwenchat run crashed in native code")
    assert "(Segmentation fault)" in lines[0] and str(last) in lines[0]
    assert "qwenchat doctor" in lines[0]
    assert "Fatal Python error: Segmentation fault" in last.read_text()
    assert "broken.py" in last.read_text()  # the stack says where it died

    again = run_cli("config", "path", env=env)
    assert again.stderr == "" and last.exists()


def test_a_run_that_ends_normally_leaves_no_log(env: dict[str, str]) -> None:
    assert run_cli("config", "path", env=env).returncode == 0
    assert sorted(p.name for p in crashes(env).iterdir()) == []


def test_logs_of_running_processes_are_left_and_of_ended_ones_cleared(
    env: dict[str, str],
) -> None:
    folder = crashes(env)
    folder.mkdir(parents=True)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    try:
        # A live run's log holds nothing yet, or its stack being written: not ours to read.
        (folder / f"{running.pid}.log").write_text("Fatal Python error: Aborted\n")
        (folder / f"{ended.pid}.log").write_text("")  # SIGKILLed: no atexit ran, no crash
        result = run_cli("config", "path", env=env)
        assert result.stderr == ""
        assert sorted(p.name for p in folder.iterdir()) == [f"{running.pid}.log"]
    finally:
        running.kill()
        running.wait()
