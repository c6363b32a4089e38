"""Shared fixtures: the real test model, assembled once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.engine.llama_build import rebuild_command
from qwenchat.engine.selfcheck import check_in_child
from qwenchat.models import TEST_MODEL, assemble, is_installed


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep qwenchat's caches out of the user's cache dir, in and out of process."""
    monkeypatch.setenv("QWENCHAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir private to this test run, holding the assembled test model."""
    return tmp_path_factory.mktemp("qwenchat-data")


@pytest.fixture(scope="session")
def test_model_path(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The assembled test model, once the llama.cpp build is seen to answer right with it.

    A build that crashes or computes garbage on this CPU (llama.cpp's AMX path, say)
    stops the whole run here with the reason, rather than failing every model test
    in its own plausible-looking way.
    """
    if not is_installed(TEST_MODEL):
        pytest.fail(f"the test model is not installed: {TEST_MODEL.install_hint()}")
    path = assemble(TEST_MODEL, data_dir / "models")
    config = tmp_path_factory.mktemp("selfcheck-config")  # no user config in the way
    verdict = check_in_child(path, env={"QWENCHAT_CONFIG_DIR": str(config)})
    if not verdict.ok:
        pytest.exit(
            f"the llama.cpp build is broken on this CPU: {verdict.detail}."
            f" Rebuild it: {rebuild_command()}",
            returncode=1,
        )
    return path


@pytest.fixture
def model_env(data_dir: Path, test_model_path: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for a qwenchat subprocess that finds the test model by default."""
    return {"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_DATA_DIR": str(data_dir)}
