"""Where qwenchat keeps things: the config, data and cache dirs, each with an override.

Kept apart from :mod:`qwenchat.config` (pydantic, the settings models) so that what
runs before any command, such as arming the crash log, imports only the standard
library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

APP_NAME = "qwenchat"
CONFIG_FILE = "config.toml"


def config_dir() -> Path:
    """The directory holding ``config.toml`` (``$QWENCHAT_CONFIG_DIR`` overrides)."""
    return _user_dir("QWENCHAT_CONFIG_DIR", "config")


def data_dir() -> Path:
    """The directory holding models and sessions (``$QWENCHAT_DATA_DIR`` overrides)."""
    return _user_dir("QWENCHAT_DATA_DIR", "data")


def cache_dir() -> Path:
    """The directory for caches that can be deleted at any time (``$QWENCHAT_CACHE_DIR``)."""
    return _user_dir("QWENCHAT_CACHE_DIR", "cache")


def _user_dir(variable: str, kind: Literal["config", "data", "cache"]) -> Path:
    """``$variable`` if set, else platformdirs' user ``kind`` dir for qwenchat."""
    override = os.environ.get(variable)
    if override:
        return Path(override).expanduser()
    import platformdirs  # not imported at all when the variable is set

    return getattr(platformdirs, f"user_{kind}_path")(APP_NAME)  # type: ignore[no-any-return]


def config_path() -> Path:
    return config_dir() / CONFIG_FILE
