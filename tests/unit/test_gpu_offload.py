"""GPU offload: which layer counts `auto`, `all` and a number try, and the back-off when
loading fails (no GPU needed: the loader is a stand-in)."""

from __future__ import annotations

import pytest

from qwenchat.engine.llama import load_llama, offload_attempts


def test_auto_offloads_everything_then_backs_off_to_the_cpu() -> None:
    assert offload_attempts("auto", 25, supported=True) == [-1, 12, 6, 3, 1, 0]
    assert offload_attempts("auto", 25, supported=False) == [0]  # a CPU-only build


def test_all_and_a_number_are_tried_as_asked() -> None:
    assert offload_attempts("all", 25, supported=True) == [-1]
    assert offload_attempts(7, 25, supported=True) == [7]
    assert offload_attempts(0, 25, supported=True) == [0]


def fits(most: int):  # type: ignore[no-untyped-def]
    """A loader whose GPU takes at most ``most`` layers of a 25-layer model."""
    tried: list[int] = []

    def make(n_gpu: int) -> object:
        tried.append(n_gpu)
        if (25 if n_gpu < 0 else n_gpu) > most:
            raise ValueError("Failed to create llama_context")
        return f"model with {n_gpu}"

    return make, tried


def test_a_gpu_too_small_for_all_layers_gets_as_many_as_fit_and_a_note() -> None:
    make, tried = fits(8)
    llm, layers, note = load_llama(make, offload_attempts("auto", 25, supported=True))
    assert (llm, layers, tried) == ("model with 6", 6, [-1, 12, 6])
    assert note is not None and "loaded with 6 layers on the GPU instead" in note
    assert "all layers: Failed to create llama_context" in note


def test_no_gpu_memory_at_all_falls_back_to_the_cpu() -> None:
    make, tried = fits(0)
    _, layers, note = load_llama(make, offload_attempts("auto", 25, supported=True))
    assert layers == 0 and tried == [-1, 12, 6, 3, 1, 0]
    assert note is not None and note.endswith("loaded on the CPU instead")


def test_what_was_asked_for_fails_loudly_and_a_first_try_that_works_says_nothing() -> None:
    make, _ = fits(8)
    with pytest.raises(ValueError, match="llama_context"):
        load_llama(make, offload_attempts("all", 25, supported=True))
    assert load_llama(make, [4]) == ("model with 4", 4, None)
