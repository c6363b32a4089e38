"""The llama.cpp build's system info, the AMX guard's decision and its hook on model params."""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
from pathlib import Path

import llama_cpp
import llama_cpp._internals as internals
import pytest

from qwenchat.engine.llama_build import (
    NO_AMX_FLAGS,
    BuildInfo,
    guard_note,
    model_params,
    rebuild_command,
    use_extra_buffers,
)

AVX512 = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 |"
    " AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 |"
    " OPENMP = 1 | REPACK = 1 | "
)
WITH_AMX = AVX512.replace("AVX512_BF16 = 1 |", "AVX512_BF16 = 1 | AMX_INT8 = 1 |")
CUDA_AND_CPU = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | " + AVX512


def test_system_info_parses_per_backend() -> None:
    info = BuildInfo.parse(CUDA_AND_CPU)
    assert list(info.features) == ["CUDA", "CPU"]
    cuda = {"ARCHS": "890", "USE_GRAPHS": "1", "PEER_MAX_BATCH_SIZE": "128"}
    assert info.features["CUDA"] == cuda
    assert info.cpu_flags()[:3] == ["SSE3", "SSSE3", "AVX"]
    assert info.repack and not info.amx


def test_amx_is_read_from_the_cpu_backend() -> None:
    assert BuildInfo.parse(WITH_AMX).amx
    assert not BuildInfo.parse(AVX512.replace("AVX512 = 1", "AVX512 = 0")).flag("AVX512")
    assert not BuildInfo.parse("").amx


def test_the_loaded_library_parses() -> None:
    from qwenchat.engine.llama_build import build_info

    info = build_info()
    assert "CPU" in info.features, info.text
    assert info.text == llama_cpp.llama_print_system_info().decode().strip()


@pytest.mark.parametrize(
    ("text", "opt_in", "extra", "says"),
    [
        (AVX512, False, True, None),
        (AVX512, True, True, None),
        (WITH_AMX, False, False, "load without extra buffer types"),
        (WITH_AMX, True, True, "engine.amx = true uses it"),
    ],
)
def test_the_guard_turns_extra_buffers_off_only_for_amx_without_opt_in(
    text: str, opt_in: bool, extra: bool, says: str | None
) -> None:
    info = BuildInfo.parse(text)
    assert use_extra_buffers(info, opt_in) is extra
    note = guard_note(info, opt_in)
    assert (note is None) if says is None else (note is not None and says in note)


def test_the_hook_sets_the_field_on_the_params_llama_passes_and_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bool] = []

    def fake_model(*, path_model: str, params: object, verbose: bool = True) -> str:
        seen.append(params.use_extra_bufts)  # type: ignore[attr-defined]
        return path_model

    monkeypatch.setattr(internals, "LlamaModel", fake_model)
    params = llama_cpp.llama_model_default_params()
    assert params.use_extra_bufts  # llama.cpp's default, which the hook changes
    with model_params(use_extra_bufts=False):
        assert internals.LlamaModel(path_model="m.gguf", params=params) == "m.gguf"
    assert seen == [False] and not params.use_extra_bufts
    assert internals.LlamaModel is fake_model
    with model_params(use_extra_bufts=True):  # the default: nothing is wrapped
        assert internals.LlamaModel is fake_model


def test_the_hook_is_undone_when_loading_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(**_kwargs: object) -> None:
        raise ValueError("Failed to load model")

    monkeypatch.setattr(internals, "LlamaModel", failing)
    with pytest.raises(ValueError), model_params(use_extra_bufts=False):
        internals.LlamaModel(path_model="m", params=llama_cpp.llama_model_default_params())
    assert internals.LlamaModel is failing


def test_the_rebuild_command_compiles_amx_out_on_x86(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    words = shlex.split(rebuild_command())
    assert words[0].startswith("CMAKE_ARGS=") and "-mno-amx-int8" in words[0]
    assert words[1:4] == ["pip", "install", "--force-reinstall"]
    assert f"llama-cpp-python=={llama_cpp.__version__}" in words
    monkeypatch.setattr("platform.machine", lambda: "aarch64")  # gcc there rejects -mno-amx
    assert "CMAKE_ARGS" not in rebuild_command()


# The quick start's CMake include, on a stand-in for llama.cpp's CPU backend: a
# subdirectory target compiled with -march=sapphirerapids (an AMX CPU) the way ggml adds
# -march=native, with the include's flags coming from the top level's CMAKE_C_FLAGS.
_PROBE = """
#if defined(__AMX_INT8__) || defined(__AMX_TILE__) || defined(__AMX_BF16__)
#error AMX is on
#endif
#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error AVX-512 is off
#endif
int probe(void) { return 0; }
"""


@pytest.fixture
def cmake_project(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.21)\nproject(top C CXX)\nadd_subdirectory(sub)\n"
    )
    (tmp_path / "sub" / "CMakeLists.txt").write_text(
        "project(ggml C CXX)\nadd_library(probe STATIC probe.c)\n"
        "target_compile_options(probe PRIVATE -march=sapphirerapids)\n"
    )
    (tmp_path / "sub" / "probe.c").write_text(_PROBE)
    return tmp_path


def _build(project: Path, *cmake_args: str) -> subprocess.CompletedProcess[str]:
    build = project / "build"
    configure = ["cmake", "-S", str(project), "-B", str(build), *cmake_args]
    subprocess.run(configure, check=True, capture_output=True, text=True)
    return subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the include changes x86-64 only")
def test_the_cmake_include_compiles_amx_out_and_keeps_avx512(cmake_project: Path) -> None:
    include = Path(__file__).parents[2] / "cmake" / "llama-no-amx.cmake"
    assert NO_AMX_FLAGS in include.read_text()
    built = _build(cmake_project, f"-DCMAKE_PROJECT_INCLUDE={include}")
    assert built.returncode == 0, built.stdout + built.stderr
    shutil.rmtree(cmake_project / "build")
    without = _build(cmake_project)
    assert without.returncode != 0 and "AMX is on" in without.stdout + without.stderr
