"""Settings and paths.

Settings come from, in rising precedence: defaults, the TOML config file in the
config dir, environment variables, and command-line flags. The file is validated
with pydantic; a bad file is reported with its path, the key and what is expected.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qwenchat.errors import ConfigError
from qwenchat.sandbox.limits import LayerName, Limits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

APP_NAME = "qwenchat"
CONFIG_FILE = "config.toml"


def config_dir() -> Path:
    """The directory holding ``config.toml`` (``$QWENCHAT_CONFIG_DIR`` overrides)."""
    override = os.environ.get("QWENCHAT_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_config_path(APP_NAME)


def data_dir() -> Path:
    """The directory holding models and sessions (``$QWENCHAT_DATA_DIR`` overrides)."""
    override = os.environ.get("QWENCHAT_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_data_path(APP_NAME)


def cache_dir() -> Path:
    """The directory for caches that can be deleted at any time (``$QWENCHAT_CACHE_DIR``)."""
    override = os.environ.get("QWENCHAT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_cache_path(APP_NAME)


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


GpuLayers = Union[Literal["auto", "all"], Annotated[int, Field(ge=0)]]


class Sampling(BaseModel):
    """Sampling settings; the defaults are Qwen2.5's recommended ones."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(0.8, gt=0.0, le=1.0)
    top_k: int = Field(20, ge=0)
    repeat_penalty: float = Field(1.05, gt=0.0)
    max_tokens: int = Field(1024, ge=1)
    seed: int | None = None


class EngineSettings(BaseModel):
    """How the model is loaded."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int | None = Field(None, ge=256, description="None: min(8192, the model's)")
    threads: int | None = Field(None, ge=1, description="None: the CPUs this process may use")
    gpu_layers: GpuLayers = "auto"
    kv_cache_mb: int = Field(
        1024, ge=0, description="disk for saved KV states of sessions (0: none)"
    )

    @field_validator("gpu_layers", mode="before")
    @classmethod
    def _parse_gpu_layers(cls, value: Any) -> Any:
        return parse_gpu_layers(value) if isinstance(value, str) else value


class SandboxSettings(BaseModel):
    """Where model-written Python runs (the ``python`` tool and TIR mode)."""

    model_config = ConfigDict(extra="forbid")

    layer: LayerName | None = Field(None, description="None: the strongest that works here")
    allow_unsandboxed: bool = Field(
        False, description="run code with no isolation where no sandbox works (dangerous)"
    )
    timeout: float = Field(10.0, gt=0, description="wall-clock seconds per code run")
    limits: Limits = Limits()


class UISettings(BaseModel):
    """The terminal UI's choices (set from the TUI itself)."""

    model_config = ConfigDict(extra="forbid")

    theme: str | None = Field(None, description="a Textual theme name; None: textual-dark")


class Settings(BaseModel):
    """The whole configuration, as read from ``config.toml``."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="default model: a path or a name in models_dir")
    models_dir: Path | None = None
    system_prompt: str | None = None
    sampling: Sampling = Sampling()
    engine: EngineSettings = EngineSettings()
    sandbox: SandboxSettings = SandboxSettings()
    ui: UISettings = UISettings()

    def resolved_models_dir(self) -> Path:
        return (self.models_dir or data_dir() / "models").expanduser()


def parse_gpu_layers(value: str) -> Literal["auto", "all"] | int:
    """Parse ``auto``, ``all`` or a non-negative layer count."""
    text = value.strip().lower()
    if text in ("auto", "all"):
        return text  # type: ignore[return-value]
    if text.isdigit():
        return int(text)
    raise ValueError(f"expected auto, all or a number of layers, not {value!r}")


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the config file (a missing file means defaults).

    ``$QWENCHAT_MODEL`` overrides the file's ``model``.
    """
    path = path or config_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        raise ConfigError(f"config file {path}: key '{key}': {err['msg']}") from None
    env_model = os.environ.get("QWENCHAT_MODEL")
    if env_model:
        settings = settings.model_copy(update={"model": env_model})
    return settings


def save_theme(theme: str, path: Path | None = None) -> None:
    """Remember the TUI's theme as ``[ui] theme`` in the config file, leaving the rest of
    the file (comments included) as it is."""
    path = path or config_path()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    line = f"theme = {json.dumps(theme)}"  # a JSON string of a theme name is a TOML string
    heads = [i for i, text in enumerate(lines) if text.strip() == "[ui]"]
    if not heads:
        lines += ["", "[ui]", line] if lines else ["[ui]", line]
    else:
        start = heads[0]
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        keys = [i for i in range(start + 1, end) if re.match(r"\s*theme\s*=", lines[i])]
        if keys:
            lines[keys[0]] = line
        else:
            lines.insert(start + 1, line)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".toml.partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(path)
