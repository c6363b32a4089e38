"""What the loaded llama.cpp library was built with, and the guard against its AMX path.

llama.cpp's Intel AMX code (compiled in whenever ``-march=native`` finds AMX on the
build machine) repacks Q4_K weights into a buffer whose kernels crash or compute
garbage on some CPUs (llama.cpp #20824). qwenchat's own build compiles it out
(``cmake/llama-no-amx.cmake``); for a build qwenchat did not make, a model is loaded
without llama.cpp's *extra buffer types* when the library reports AMX, unless the
user opts in with ``engine.amx = true``. That also turns off the CPU_REPACK buffer,
which is why a rebuild, not the guard, is the fix.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from pydantic import BaseModel

NO_AMX_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

# Llama() loads on the caller's thread, and the hook below is process-wide while it runs.
_LOAD_LOCK = threading.Lock()


class BuildInfo(BaseModel):
    """``llama_print_system_info()``, parsed: each backend's feature flags."""

    text: str
    features: dict[str, dict[str, str]]
    """Backend name (``CPU``, ``CUDA``...) to its features (``AVX512`` -> ``1``)."""

    @classmethod
    def parse(cls, text: str) -> BuildInfo:
        """Read ``"CPU : SSE3 = 1 | AVX = 1 | ... | "`` (one run of pairs per backend)."""
        features: dict[str, dict[str, str]] = {}
        current: dict[str, str] = features.setdefault("", {})
        for item in text.split("|"):
            if " : " in item:  # "CUDA : ARCHS = 890": a new backend, then its first pair
                backend, item = item.split(" : ", 1)
                current = features.setdefault(backend.strip(), {})
            name, sep, value = item.partition("=")
            if sep and name.strip():
                current[name.strip()] = value.strip()
        return cls(text=text.strip(), features={k: v for k, v in features.items() if v})

    def flag(self, name: str) -> bool:
        """Whether any backend reports the feature ``name`` as on."""
        return any(f.get(name, "0") not in ("0", "") for f in self.features.values())

    @property
    def amx(self) -> bool:
        return self.flag("AMX_INT8")

    @property
    def repack(self) -> bool:
        """Whether the CPU_REPACK buffer type is compiled in (it is used only with extra
        buffer types on)."""
        return self.flag("REPACK")

    def cpu_flags(self) -> list[str]:
        """The CPU backend's features that are on, in llama.cpp's order."""
        return [name for name, value in self.features.get("CPU", {}).items() if value != "0"]


def rebuild_command() -> str:
    """The shell command that rebuilds the installed llama-cpp-python on this machine, with
    AMX compiled out on x86-64 (``--no-cache-dir``: pip would otherwise reinstall the wheel
    it built before)."""
    import llama_cpp

    pip = (
        "pip install --force-reinstall --no-cache-dir --no-deps"
        f" llama-cpp-python=={llama_cpp.__version__}"
    )
    if platform.machine().lower() not in ("x86_64", "amd64"):  # the flags are x86 ones
        return pip
    flags = f"-DCMAKE_C_FLAGS='{NO_AMX_FLAGS}' -DCMAKE_CXX_FLAGS='{NO_AMX_FLAGS}'"
    return f'CMAKE_ARGS="{flags}" {pip}'


@cache
def build_info() -> BuildInfo:
    """The loaded library's :class:`BuildInfo` (it cannot change within a process)."""
    import llama_cpp

    return BuildInfo.parse(llama_cpp.llama_print_system_info().decode(errors="replace"))


def use_extra_buffers(info: BuildInfo, amx_opt_in: bool) -> bool:
    """Whether to load with llama.cpp's extra buffer types (AMX, CPU_REPACK): yes, unless
    the build has AMX and the user did not opt in."""
    return amx_opt_in or not info.amx


def guard_note(info: BuildInfo, amx_opt_in: bool) -> str | None:
    """What the user should know about the AMX guard for this build, or None."""
    if not info.amx:
        return None
    if amx_opt_in:
        return (
            "this llama.cpp build has Intel AMX and engine.amx = true uses it: if replies are"
            " garbage or it crashes (llama.cpp #20824), set engine.amx = false"
        )
    return (
        "this llama.cpp build has Intel AMX, which crashes or computes garbage on some CPUs"
        " (llama.cpp #20824): models load without extra buffer types (no AMX, no CPU repack,"
        " slower); rebuild without AMX (qwenchat doctor shows how) or set engine.amx = true"
    )


@contextmanager
def model_params(*, use_extra_bufts: bool) -> Iterator[None]:
    """Load a ``llama_cpp.Llama`` inside this block to set ``use_extra_bufts`` on the
    ``llama_model_params`` it passes to llama.cpp.

    llama-cpp-python builds those parameters inside ``Llama.__init__`` and has no keyword
    for this field, so the block wraps the one constructor it hands them to
    (``llama_cpp._internals.LlamaModel``) and restores it afterwards.
    """
    if use_extra_bufts:  # llama.cpp's default: nothing to change
        yield
        return
    import llama_cpp._internals as internals

    original = internals.LlamaModel

    def load(*, path_model: str, params: object, verbose: bool = True) -> object:
        params.use_extra_bufts = False  # type: ignore[attr-defined]
        return original(path_model=path_model, params=params, verbose=verbose)

    with _LOAD_LOCK:
        internals.LlamaModel = load  # type: ignore[assignment,misc]
        try:
            yield
        finally:
            internals.LlamaModel = original  # type: ignore[misc]
