"""Config file loading, validation messages and environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.config import load_settings, parse_gpu_layers
from qwenchat.errors import ConfigError
from qwenchat.paths import config_path, data_dir


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("QWENCHAT_MODEL", raising=False)


def write_config(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_env_vars_choose_the_dirs(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "cfg" / "config.toml"
    assert data_dir() == tmp_path / "data"
    assert load_settings().resolved_models_dir() == tmp_path / "data" / "models"


def test_missing_file_gives_qwen_defaults() -> None:
    settings = load_settings()
    assert settings.sampling.temperature == 0.7
    assert (settings.sampling.top_p, settings.sampling.top_k, settings.sampling.repeat_penalty) == (
        0.8,
        20,
        1.05,
    )
    assert settings.engine.gpu_layers == "auto" and settings.model is None


def test_file_values_are_read() -> None:
    write_config(
        'model = "tiny"\n[sampling]\ntemperature = 0.2\n[engine]\ngpu_layers = "12"\nthreads = 3\n'
    )
    settings = load_settings()
    assert settings.model == "tiny"
    assert settings.sampling.temperature == 0.2
    assert settings.engine.gpu_layers == 12 and settings.engine.threads == 3


def test_env_model_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config('model = "tiny"\n')
    monkeypatch.setenv("QWENCHAT_MODEL", "other")
    assert load_settings().model == "other"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model = [", "is not valid TOML"),
        ("[sampling]\ntemperature = 'hot'\n", "key 'sampling.temperature'"),
        (
            "[sampling]\ntop_p = 2.0\n",
            "key 'sampling.top_p': Input should be less than or equal to 1",
        ),
        ("colour = 'red'\n", "key 'colour': Extra inputs are not permitted"),
        ("[engine]\ngpu_layers = 'lots'\n", "key 'engine.gpu_layers'"),
    ],
)
def test_bad_files_name_the_file_and_key(text: str, expected: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_unreadable_file_is_a_config_error() -> None:
    path = write_config("")
    path.write_bytes(b"\xff\xfe bad utf-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "parsed"), [("auto", "auto"), ("ALL", "all"), ("0", 0), (" 33 ", 33)]
)
def test_parse_gpu_layers(value: str, parsed: object) -> None:
    assert parse_gpu_layers(value) == parsed


@pytest.mark.parametrize("value", ["-1", "some", ""])
def test_parse_gpu_layers_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="expected auto, all or a number"):
        parse_gpu_layers(value)
