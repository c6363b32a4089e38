"""Where qwenchat keeps things: the config, data and cache dirs, each with an override.

Kept apart from :mod:`qwenchat.config` (pydantic, the settings models) so that what
runs before any command, such as arming the crash log, imports only the standard
library.
"""

from __future__ import annotations

import os
from pathlib import Path

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
