"""The engine contract, as the driver enforces it for every engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from qwenchat.chatml import Segment
from qwenchat.config import Sampling
from qwenchat.engine.base import Completion, Constraint, EngineInfo
from qwenchat.engine.driver import Decode, DrivenEngine, Piece
from qwenchat.errors import InputError

PROMPT = [Segment("<|im_start|>user\nhi<|im_end|>\n", special=True)]


class Listed(Decode):
    def __init__(self, pieces: list[Piece], *, ends: bool, tail: str = "") -> None:
        super().__init__(prompt_tokens=7, cached_tokens=3)
        self.listed, self.ends, self.tail = pieces, ends, tail
        self.closed = False
        self.interrupted = threading.Event()
        self.finished: Completion | None = None
        self.taken = 0

    def pieces(self) -> Iterator[Piece]:
        try:
            for piece in self.listed:
                self.taken += 1
                yield piece
            self.ended = self.ends
        finally:
            self.closed = True

    def flush(self) -> str:
        return self.tail

    def interrupt(self) -> None:
        self.interrupted.set()

    def finish(self, completion: Completion) -> None:
        self.finished = completion


class ListEngine(DrivenEngine):
    model_name = "listed"

    def __init__(self, decode: Listed, n_ctx: int = 100) -> None:
        self.listed = decode
        self.n_ctx = n_ctx
        self.budgets: list[int] = []

    def count_tokens(self, prompt: list[Segment]) -> int:
        return 7

    def info(self) -> EngineInfo:
        return EngineInfo(model="listed", n_ctx=self.n_ctx, runs_on="CPU", summary="listed")

    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        self.budgets.append(max_tokens)
        return self.listed


def run(
    engine: ListEngine, sampling: Sampling | None = None, stop: Sequence[str] = ()
) -> tuple[list[str], Completion]:
    gen = engine.generate(PROMPT, sampling or Sampling(max_tokens=50), stop=stop)
    deltas = list(gen)
    assert gen.result is not None
    return deltas, gen.result


def test_a_reply_the_model_ends_is_stopped_and_counted() -> None:
    decode = Listed([Piece("Hel"), Piece(""), Piece("lo", tokens=2)], ends=True, tail="!")
    deltas, result = run(ListEngine(decode))
    assert deltas == ["Hel", "lo", "!"]  # a token with no text yet yields nothing
    assert (result.text, result.finish_reason, result.stop_sequence) == ("Hello!", "stop", None)
    assert (result.usage.prompt_tokens, result.usage.cached_tokens) == (7, 3)
    assert result.usage.completion_tokens == 4
    assert decode.closed and decode.finished is result


def test_a_stream_that_runs_out_without_ending_its_turn_is_cut_for_length() -> None:
    _, result = run(ListEngine(Listed([Piece("a")], ends=False)))
    assert result.finish_reason == "length"


def test_a_stop_string_across_pieces_ends_the_reply_with_it() -> None:
    decode = Listed([Piece("say <to"), Piece("ol_c"), Piece("all>{"), Piece("more")], ends=True)
    deltas, result = run(ListEngine(decode), stop=["<tool_call>"])
    assert deltas == ["say <to", "ol_c", "all>{"]
    assert (result.finish_reason, result.stop_sequence) == ("stop", "<tool_call>")
    assert decode.taken == 3 and decode.closed  # nothing decoded past the stop


def test_the_budget_is_the_smaller_of_max_tokens_and_the_context_room() -> None:
    decode = Listed([Piece("x")] * 30, ends=True)
    engine = ListEngine(decode, n_ctx=17)  # 7 prompt tokens: room for 10
    _, result = run(engine)
    assert engine.budgets == [10] and decode.taken == 10 and decode.closed
    assert (result.text, result.finish_reason) == ("x" * 10, "length")
    _, result = run(ListEngine(Listed([Piece("y")] * 30, ends=True)), Sampling(max_tokens=4))
    assert (result.text, result.finish_reason) == ("yyyy", "length")


def test_a_prompt_with_no_room_left_is_refused_before_decoding() -> None:
    engine = ListEngine(Listed([Piece("x")], ends=True), n_ctx=7)
    with pytest.raises(InputError, match="7 tokens but the context window is 7"):
        run(engine)
    assert engine.budgets == []


def test_a_cancel_before_the_start_decodes_nothing() -> None:
    engine = ListEngine(Listed([Piece("x")], ends=True))
    gen = engine.generate(PROMPT, Sampling())
    gen.cancel()
    assert list(gen) == []
    assert gen.result is not None and gen.result.finish_reason == "cancelled"
    assert engine.budgets == []


def test_a_cancel_from_another_thread_interrupts_the_engine_and_keeps_the_text() -> None:
    release = threading.Event()

    class Blocking(Listed):
        def pieces(self) -> Iterator[Piece]:
            yield Piece("partial")
            release.wait(5)  # a read blocked on a server, until interrupted
            yield Piece(" more")

        def interrupt(self) -> None:
            super().interrupt()
            release.set()

    decode = Blocking([], ends=True)
    gen = ListEngine(decode).generate(PROMPT, Sampling())
    deltas = []
    for delta in gen:
        deltas.append(delta)
        if delta == "partial":
            threading.Thread(target=gen.cancel).start()
    assert decode.interrupted.is_set()
    assert gen.result is not None and gen.result.finish_reason == "cancelled"
    assert gen.result.text == "".join(deltas) and deltas[0] == "partial"
    assert decode.finished is gen.result  # the engine learns a cancelled reply too


def test_the_notice_travels_with_the_completion() -> None:
    decode = Listed([Piece("{}")], ends=True)
    decode.notice = "this server takes no grammar"
    _, result = run(ListEngine(decode))
    assert result.notice == "this server takes no grammar"
