"""Loading a model into an engine, in the caller's thread or on a thread of its own.

Kept apart from :mod:`qwenchat.chat` so that starting a load imports neither
the agent loop nor llama.cpp before the thread is running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qwenchat.config import Settings
    from qwenchat.engine.base import Engine

EngineFactory = Callable[["str | Path | None", "Settings", Callable[[str], None]], "Engine"]
"""How a command gets its engine: (model, settings, warn) -> Engine. :func:`load_engine`
by default; tests pass a scripted engine's maker (``ask`` takes it from the click
context's ``obj``), so that commands run in-process without a model."""


def load_engine(
    model: str | Path | None,
    settings: Settings,
    warn: Callable[[str], None] = lambda _msg: None,
) -> Engine:
    """Resolve ``model`` (a path, a name, or None for the default) and load it.

    With ``engine.url`` set, connect to that server instead: ``model`` (else
    ``engine.model``) names the server's model, and ``settings.model`` is not used.
    """
    if settings.engine.url:
        from qwenchat.engine.remote import RemoteEngine

        return RemoteEngine(
            settings.engine.url,
            model=str(model) if model is not None else settings.engine.model,
            api_key_env=settings.engine.api_key_env,
            n_ctx=settings.engine.n_ctx,
            timeout=settings.engine.timeout,
            warn=warn,
        )
    from qwenchat.engine.llama import LlamaEngine
    from qwenchat.models import QWEN_ARCHITECTURE, resolve_model

    path = resolve_model(
        str(model) if model is not None else None, settings.model, settings.resolved_models_dir()
    )
    tuning = settings.engine
    engine = LlamaEngine(
        path,
        n_ctx=tuning.n_ctx,
        threads=tuning.threads,
        gpu_layers=tuning.gpu_layers,
        amx=tuning.amx,
        threads_batch=tuning.threads_batch,
        n_batch=tuning.n_batch,
        n_ubatch=tuning.n_ubatch,
        flash_attn=tuning.flash_attn,
        kv_type=tuning.kv_type,
    )
    if engine.offload_note:
        warn(engine.offload_note)
    arch = engine.gguf.architecture
    if arch != QWEN_ARCHITECTURE:
        warn(
            f"{path.name} is a '{arch}' model, not Qwen2.5 (qwen2):"
            " replies and tool calls may be off"
        )
    return engine


class EngineLoad:
    """:func:`load_engine` on a thread, started at once; :meth:`result` waits for it.

    Loading the weights is C code that releases the GIL, so whatever the caller
    imports or prepares meanwhile (the agent loop, the chat format) is free.
    """

    def __init__(
        self,
        model: str | Path | None,
        settings: Settings,
        warn: Callable[[str], None] = lambda _msg: None,
        load: EngineFactory = load_engine,
    ) -> None:
        self._engine: Engine | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._load, args=(load, model, settings, warn), name="engine-load", daemon=True
        )
        self._thread.start()

    def _load(
        self,
        load: EngineFactory,
        model: str | Path | None,
        settings: Settings,
        warn: Callable[[str], None],
    ) -> None:
        try:
            self._engine = load(model, settings, warn)
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def result(self) -> Engine:
        """The loaded engine; raises what loading raised (a :class:`ModelError` usually)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._engine is not None
        return self._engine
