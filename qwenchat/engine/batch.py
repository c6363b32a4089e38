"""K replies to one prompt decoded together in llama.cpp: the samples of a vote.

The prompt is evaluated once, into sequence 0 of a context of its own that holds up
to :data:`MAX_SEQUENCES` sequences in one unified KV cache; ``llama_memory_seq_cp``
then shares its cells with sequences 1..K-1 (no copy: a unified cache tags cells
with the sequences that see them), and every step decodes one token of each
sequence still going in a single ``llama_decode`` batch. On a CPU, decoding is
bound by reading the weights, which a batch reads once for all its sequences.

Each reply is a :class:`~qwenchat.engine.driver.Decode` under the driver like any
other (stop strings, budget, cancel, the ``Completion``). Reading one reply steps
the whole batch, so the others' tokens wait in their buffers until they are read; a
sequence stops being decoded when its reply ends (end of turn, a stop string, its
budget) or is closed. Sampling is llama.cpp's own chain per sequence, in the order
``Llama.generate`` builds it (repeat penalty, top-k, top-p, temperature, a seeded
draw), so a sample is drawn as a single reply would be.
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import llama_cpp
from llama_cpp import _internals

from qwenchat.chatml import Segment
from qwenchat.config import MAX_SAMPLES, Sampling
from qwenchat.engine.base import Completion, Constraint, EngineInfo, StopStrings
from qwenchat.engine.driver import Decode, DrivenEngine, Piece
from qwenchat.errors import GenerationError

if TYPE_CHECKING:
    from qwenchat.engine.llama import LlamaEngine

MAX_SEQUENCES = MAX_SAMPLES
"""The most replies one batch decodes: a vote's most samples."""
_END = None  # in a sequence's buffer: the reply ended there


class BatchContext:
    """A second llama.cpp context on the engine's model, for batches (made on first
    use: its KV cache costs memory only a vote needs). Twice the engine's context
    window, since K replies share it with their prompt."""

    def __init__(self, engine: LlamaEngine) -> None:
        llm = engine._llm
        params = llama_cpp.llama_context_default_params()
        for field in (
            "n_batch",
            "n_ubatch",
            "n_threads",
            "n_threads_batch",
            "flash_attn_type",
            "type_k",
            "type_v",
        ):
            setattr(params, field, getattr(llm.context_params, field))
        params.n_ctx = 2 * engine.n_ctx
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True
        try:
            self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as exc:
            raise GenerationError(
                f"cannot make a context for {MAX_SEQUENCES} samples: {exc}"
            ) from None
        self.n_batch = int(params.n_batch)
        self.batch = _internals.LlamaBatch(
            n_tokens=max(self.n_batch, MAX_SEQUENCES), embd=0, n_seq_max=1, verbose=False
        )
        self.user: object | None = None
        """What filled the cache last: a vote's :class:`Batch` clears it, the
        :class:`~qwenchat.engine.scoring.Scorer` keeps its prompts in it."""


class _Sequence:
    """One reply of a batch: its sampler, where it stands, and the tokens (with their
    text, decoded once here) not yet read."""

    def __init__(self, sampler: _internals.LlamaSampler, stop: Sequence[str]) -> None:
        self.sampler = sampler
        self.buffer: deque[tuple[int, str] | None] = deque()
        self.live = True  # still decoded each step
        self.sampled = 0
        self.logits_at = 0  # the batch index of the logits its next token comes from
        self.stop = StopStrings(stop)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")


class Batch:
    """The replies of ``samplings`` to one prompt (token ids ``ids``), decoded together
    in ``context``; :meth:`decode` gives each its :class:`Decode`."""

    def __init__(
        self,
        engine: LlamaEngine,
        context: BatchContext,
        ids: list[int],
        samplings: Sequence[Sampling],
        stop: Sequence[str],
        max_tokens: int,
    ) -> None:
        if not 1 <= len(samplings) <= MAX_SEQUENCES:
            raise ValueError(f"a batch holds 1 to {MAX_SEQUENCES} replies")
        self.engine = engine
        self.context = context
        self.ids = ids
        self.max_tokens = max_tokens
        self.sequences = [_Sequence(self._sampler(s), stop) for s in samplings]
        self._started = False

    def _sampler(self, sampling: Sampling) -> _internals.LlamaSampler:
        llm = self.engine._llm
        sampler = _internals.LlamaSampler()
        sampler.add_penalties(
            n_vocab=llm.n_vocab(),
            penalty_last_n=llm.last_n_tokens_size,
            penalty_repeat=sampling.repeat_penalty,
            penalty_freq=0.0,
            penalty_present=0.0,
        )
        if sampling.temperature <= 0:
            sampler.add_greedy()
            return sampler
        sampler.add_top_k(sampling.top_k)
        sampler.add_top_p(sampling.top_p, 1)
        sampler.add_temp(sampling.temperature)
        seed = sampling.seed if sampling.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        sampler.add_dist(seed)
        return sampler

    def decode(self, number: int) -> Decode:
        return _BatchDecode(self, number)

    def _start(self) -> None:
        """Evaluate the prompt once into sequence 0 and share it with the others."""
        ctx, batch, n = self.context.ctx, self.context.batch, self.context.n_batch
        ctx.kv_cache_clear()
        self.context.user = self
        for begin in range(0, len(self.ids), n):
            batch.set_batch(self.ids[begin : begin + n], begin, False)
            self._decode()
        last = batch.n_tokens() - 1
        for number, sequence in enumerate(self.sequences):
            if number:
                ctx.kv_cache_seq_cp(0, number, -1, -1)
            sequence.logits_at = last
        self._started = True

    def step(self) -> None:
        """Sample one token of every live sequence, then decode them in one batch."""
        if not self._started:
            self._start()
        engine, ctx = self.engine, self.context.ctx
        going: list[tuple[int, int]] = []
        for number, sequence in enumerate(self.sequences):
            if not sequence.live:
                continue
            token = sequence.sampler.sample(ctx, sequence.logits_at)
            sequence.sampled += 1
            if token in engine._eog:
                sequence.buffer.append(_END)
                sequence.live = False
                continue
            text = sequence.decoder.decode(engine._piece(token))
            sequence.buffer.append((token, text))
            hit = sequence.stop.feed(text)
            if hit is not None or sequence.sampled >= self.max_tokens:
                sequence.live = False  # the driver ends the reply on the same token
            else:
                going.append((number, token))
        if not going:
            return
        raw = self.context.batch.batch
        raw.n_tokens = len(going)
        for i, (number, token) in enumerate(going):
            raw.token[i] = token
            raw.pos[i] = len(self.ids) + self.sequences[number].sampled - 1
            raw.seq_id[i][0] = number
            raw.n_seq_id[i] = 1
            raw.logits[i] = True
            self.sequences[number].logits_at = i
        self._decode()

    def _decode(self) -> None:
        try:
            self.context.ctx.decode(self.context.batch)
        except RuntimeError as exc:
            raise GenerationError(
                f"llama.cpp failed decoding the samples ({exc}): use fewer samples or a"
                " lower max_tokens"
            ) from None

    def close(self, number: int) -> None:
        """Reply ``number`` was read to its end or stopped: decode it no further."""
        self.sequences[number].live = False


class _BatchDecode(Decode):
    """One reply of a :class:`Batch`, as the driver reads it."""

    def __init__(self, batch: Batch, number: int) -> None:
        super().__init__(prompt_tokens=len(batch.ids))
        self.batch = batch
        self.number = number
        self.sequence = batch.sequences[number]
        self.out: list[int] = []

    def pieces(self) -> Iterator[Piece]:
        sequence = self.sequence
        try:
            while True:
                if not sequence.buffer:
                    if not sequence.live:
                        return
                    self.batch.step()
                    continue
                item = sequence.buffer.popleft()
                if item is _END:
                    self.ended = True
                    return
                token, text = item
                self.out.append(token)
                yield Piece(text)
        finally:
            self.batch.close(self.number)

    def flush(self) -> str:
        return self.sequence.decoder.decode(b"", final=True)

    def finish(self, completion: Completion) -> None:
        self.batch.engine._remember(completion.text, self.out)


class BatchMember(DrivenEngine):
    """The engine as the driver sees one reply of a batch: the same context window and
    tokenizer, and a :meth:`decode` that is that reply's."""

    def __init__(self, batch: Batch, number: int) -> None:
        self.batch = batch
        self.number = number
        self.model_name = batch.engine.model_name
        self.n_ctx = batch.engine.n_ctx

    def count_tokens(self, prompt: list[Segment]) -> int:
        return self.batch.engine.count_tokens(prompt)

    def info(self) -> EngineInfo:
        return self.batch.engine.info()

    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        return self.batch.decode(self.number)
