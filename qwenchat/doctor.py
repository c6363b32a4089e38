"""``qwenchat doctor``'s checks: what this installation has, and what to fix.

Each check gives a :class:`Check`: ok, warning (works, but worse than it could) or
problem (something will fail), with the fix in one line. The CLI prints them; the
TUI can show the same list.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Literal

from pydantic import BaseModel

from qwenchat.errors import QwenchatError

Status = Literal["ok", "warning", "problem"]
_CUDA_HINT = "for a GPU, reinstall llama-cpp-python with CMAKE_ARGS (see the README)"


class Check(BaseModel):
    """One line of the report."""

    status: Status
    label: str
    detail: str
    fix: str = ""


def run_checks(*, generate: bool = True) -> Iterator[Check]:
    """Every check in order; ``generate`` adds the known-answer check and a timed
    generation with the default model (which assembles the bundled model if it is the one).
    """
    yield _python()
    yield _qwenchat()
    yield from _guard("llama.cpp", _llama_cpp)
    yield from _guard("config", _config)
    model = next(_guard("model", _model))
    yield model
    yield from _guard("sandbox", _sandbox)
    if not generate or model.status == "problem":
        return
    answers = _known_answer()
    yield answers
    if answers.status == "ok":  # a build that crashed in the child would crash this process
        yield from _guard("speed", _speed)


def _guard(label: str, check: Callable[[], Check]) -> Iterator[Check]:
    """A check that raises a qwenchat error is a problem line, not a crash."""
    try:
        yield check()
    except QwenchatError as exc:
        yield Check(status="problem", label=label, detail=str(exc))


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check(status="ok", label="python", detail=f"{version} ({sys.executable})")


def _qwenchat() -> Check:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("qwenchat")
    except PackageNotFoundError:
        found = "not installed (running from a checkout)"
    return Check(status="ok", label="qwenchat", detail=found)


def _llama_cpp() -> Check:
    import llama_cpp

    from qwenchat.engine.llama_build import build_info, guard_note, rebuild_command

    build = build_info()
    detail = f"llama-cpp-python {llama_cpp.__version__}"
    cpu = ", ".join(build.cpu_flags()) or "no CPU features reported"
    note = guard_note(build, _amx_opt_in())
    if note:
        fix = f"rebuild without AMX: {rebuild_command()}"
        return Check(status="warning", label="llama.cpp", detail=f"{detail}; {note}", fix=fix)
    if llama_cpp.llama_supports_gpu_offload():
        detail += f", GPU offload supported; CPU: {cpu}"
        return Check(status="ok", label="llama.cpp", detail=detail)
    detail += f", CPU only: {cpu}"
    return Check(status="warning", label="llama.cpp", detail=detail, fix=_CUDA_HINT)


def _amx_opt_in() -> bool:
    """``engine.amx``; a bad config is the config check's problem, not this one's."""
    from qwenchat.config import load_settings

    try:
        return load_settings().engine.amx
    except QwenchatError:
        return False


def _config() -> Check:
    from qwenchat.config import load_settings
    from qwenchat.paths import config_path

    path = config_path()
    load_settings()  # a ConfigError here is the problem line
    state = "valid" if path.exists() else "absent, defaults in use"
    return Check(status="ok", label="config", detail=f"{path} ({state})")


def _model() -> Check:
    from qwenchat.config import load_settings
    from qwenchat.models import TEST_MODEL, describe, is_installed, model_files, resolve_model

    settings = load_settings()
    if settings.engine.url:  # the model is the server's: ask it what it serves
        from qwenchat.engine.load import load_engine

        engine = load_engine(None, settings)
        return Check(status="ok", label="model", detail=engine.info().summary)
    models_dir = settings.resolved_models_dir()
    if not settings.model and not model_files(models_dir):
        if is_installed(TEST_MODEL):  # resolve_model would assemble it: leave that to `ask`
            detail = f"none in {models_dir} yet; the bundled test model is assembled on first use"
            return Check(status="ok", label="model", detail=detail)
        fix = f"{TEST_MODEL.install_hint()}, or put a .gguf file in {models_dir}"
        return Check(status="problem", label="model", detail="no model found", fix=fix)
    path = resolve_model(None, settings.model, models_dir)
    info = describe(path)
    count = len(model_files(models_dir))
    detail = (
        f"{info.name} ({info.parameters or '?'} {info.quant or '?'}, context "
        f"{info.context_length or '?'}); {count} model(s) in {models_dir}"
    )
    if not info.is_qwen_template:
        fix = "use a Qwen2.5 GGUF: replies and tool calls assume its chat template"
        return Check(status="warning", label="model", detail=detail, fix=fix)
    return Check(status="ok", label="model", detail=detail)


def _sandbox() -> Check:
    from qwenchat.config import load_settings
    from qwenchat.sandbox import Sandbox

    sandbox = Sandbox.from_settings(load_settings().sandbox)
    layer = sandbox.layer
    detail = f"{layer.name} ({layer.reason}); {sandbox.memory_bound}"
    if layer.strength == "full":
        return Check(status="ok", label="sandbox", detail=detail)
    if layer.strength == "weaker":
        fix = "install bubblewrap (apt install bubblewrap) and allow user namespaces"
        return Check(
            status="warning", label="sandbox", detail=f"{detail}: WEAKER isolation", fix=fix
        )
    fix = "install bubblewrap (apt install bubblewrap)"
    if sandbox.can_run:  # no isolation, but allowed
        detail += ": NO isolation, code runs as you (sandbox.allow_unsandboxed)"
        return Check(status="warning", label="sandbox", detail=detail, fix=fix)
    return Check(status="problem", label="sandbox", detail=f"{detail}: code cannot run", fix=fix)


def _known_answer() -> Check:
    """The default model answers two fixed questions right, checked in a child process so
    that a build that crashes on this CPU is reported, not fatal."""
    from qwenchat.engine.llama_build import rebuild_command
    from qwenchat.engine.selfcheck import check_in_child

    verdict = check_in_child()
    if verdict.ok:
        return Check(status="ok", label="answers", detail=verdict.detail)
    fix = f"rebuild llama-cpp-python on this machine: {rebuild_command()}; then run doctor again"
    return Check(status="problem", label="answers", detail=verdict.detail, fix=fix)


def _speed() -> Check:
    from qwenchat.chatml import render_segments
    from qwenchat.config import Sampling, load_settings
    from qwenchat.engine.load import load_engine

    settings = load_settings()
    start = time.perf_counter()
    engine = load_engine(None, settings)
    loaded = time.perf_counter() - start
    prompt = render_segments([{"role": "user", "content": "Count from 1 to 100."}])
    generation = engine.generate(prompt, Sampling(temperature=0, max_tokens=256))
    deadline = time.perf_counter() + 5.0
    for _ in generation:
        if time.perf_counter() > deadline:
            generation.cancel()
    result = generation.result
    assert result is not None
    rate = result.timings.decode_tokens_per_s
    detail = (
        f"loaded in {loaded:.1f} s; first token {result.timings.ttft_s:.2f} s, "
        f"{rate:.1f} tokens/s over {result.usage.completion_tokens} tokens"
    )
    if rate < 5:
        fix = "close other CPU-heavy programs, or set engine.threads to the free cores"
        return Check(status="warning", label="speed", detail=detail, fix=fix)
    return Check(status="ok", label="speed", detail=detail)
