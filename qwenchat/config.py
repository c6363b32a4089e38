"""Settings (the paths they live in are :mod:`qwenchat.paths`).

Settings come from, in rising precedence: defaults, the TOML config file in the
config dir, environment variables, and command-line flags. The file is validated
with pydantic; a bad file is reported with its path, the key and what is expected.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qwenchat.errors import ConfigError
from qwenchat.paths import config_path, data_dir
from qwenchat.sandbox.limits import LayerName, Limits
from qwenchat.server_url import normalize_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

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


DEFAULT_API_KEY_ENV = "QWENCHAT_API_KEY"
DEFAULT_SERVER_TIMEOUT = 300.0
"""Seconds a remote engine waits for a server's next bytes (a slow prompt included)."""
KvType = Literal["f16", "q8_0", "q4_0"]
"""llama.cpp's ``type_k``/``type_v`` for the KV cache."""


class EngineSettings(BaseModel):
    """How the model is loaded."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int | None = Field(None, ge=256, description="None: min(8192, the model's)")
    threads: int | None = Field(None, ge=1, description="None: the CPUs this process may use")
    gpu_layers: GpuLayers = "auto"
    amx: bool = Field(
        False,
        description="use llama.cpp's extra buffer types (CPU repack, AMX) even where the"
        " build has Intel AMX, which crashes or computes garbage on some CPUs (llama.cpp"
        " #20824); false: such a build loads models without them",
    )
    threads_batch: int | None = Field(
        None, ge=1, description="threads reading prompts (None: as threads)"
    )
    n_batch: int = Field(
        512, ge=32, description="prompt tokens handed to llama.cpp at a time (its n_batch)"
    )
    n_ubatch: int = Field(
        512, ge=32, description="prompt tokens computed at a time (its n_ubatch, <= n_batch)"
    )
    flash_attn: bool = Field(
        False, description="llama.cpp's flash attention (always on with a quantised KV cache)"
    )
    kv_type: KvType = Field(
        "f16",
        description="the KV cache's number type: q8_0 halves its memory per token and q4_0"
        " quarters it, for long contexts (they need flash attention)",
    )
    kv_cache_mb: int = Field(
        1024,
        ge=0,
        description="disk for saved KV states: the starts of conversations and sessions"
        " that the next prompt starting the same way reads instead of evaluating (0: none)",
    )
    url: str | None = Field(
        None,
        description="generate on this OpenAI-compatible server (vLLM, llama-server, Ollama,"
        " llama-cpp-python's) instead of a local model; None: local",
    )
    model: str | None = Field(
        None, description="the server's model to use (with url); None: the first it lists"
    )
    api_key_env: str = Field(
        DEFAULT_API_KEY_ENV,
        description="the environment variable holding the server's API key (with url)",
    )
    timeout: float = Field(
        DEFAULT_SERVER_TIMEOUT,
        gt=0,
        description="seconds to wait for the server's next bytes (with url)",
    )

    @field_validator("gpu_layers", mode="before")
    @classmethod
    def _parse_gpu_layers(cls, value: Any) -> Any:
        return parse_gpu_layers(value) if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalize_url(value)


class SandboxSettings(BaseModel):
    """Where model-written Python runs (the ``python`` tool and TIR mode)."""

    model_config = ConfigDict(extra="forbid")

    layer: LayerName | None = Field(None, description="None: the strongest that works here")
    allow_unsandboxed: bool = Field(
        False, description="run code with no isolation where no sandbox works (dangerous)"
    )
    timeout: float = Field(10.0, gt=0, description="wall-clock seconds per code run")
    limits: Limits = Limits()


MAX_SAMPLES = 16
"""The most samples one vote draws (``--samples``, ``tir.samples``; a llama.cpp batch
holds that many sequences)."""


class TirSettings(BaseModel):
    """Tool-integrated reasoning mode (``--tir``, the TUI's TIR mode)."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(
        1,
        ge=1,
        le=MAX_SAMPLES,
        description="solutions to sample and vote on per question (self-consistency);"
        " 1: a single run at the chat's sampling",
    )


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
    tir: TirSettings = TirSettings()
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
    """Remember the TUI's theme as ``[ui] theme`` in the config file (see :func:`set_config_value`).

    Raises :class:`OSError` when the file cannot be written or edited safely.
    """
    try:
        set_config_value("theme", theme, table="ui", path=path)
    except ConfigError as exc:
        raise OSError(str(exc)) from None


def set_config_value(
    key: str, value: str, table: str | None = None, path: Path | None = None
) -> None:
    """Set ``key = "value"`` at the top level, or in ``[table]``, of the config file.

    The rest of the file (comments, order, other keys) is left as it is (``tomlkit``
    edits the document, not the data). The result is parsed again and must hold the
    same settings with just this one changed, else nothing is written and
    :class:`ConfigError` says to edit the file by hand. Raises :class:`OSError`
    when the file cannot be read or written.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    path = path or config_path()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    before = _parse_toml(path, text)
    line = f"{key} = {json.dumps(value)}"
    where = f"under [{table}] " if table else "at the top "
    problem = ConfigError(f"cannot update {path} safely; add {line} {where}by hand")
    try:
        document = tomlkit.parse(text)
        if table is None:
            document[key] = value
        else:
            section = document.setdefault(table, tomlkit.table())
            if not isinstance(section, dict):
                raise problem
            section[key] = value
        edited = tomlkit.dumps(document)
    except TOMLKitError:
        raise problem from None
    expected = dict(before)
    if table is None:
        expected[key] = value
    else:
        expected[table] = {**expected.get(table, {}), key: value}
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise problem
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".toml.partial")
    partial.write_text(edited, encoding="utf-8")
    partial.replace(path)


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix it first") from None
