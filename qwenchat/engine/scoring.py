"""How likely a text is after each of several prompts, in one llama.cpp batch.

:meth:`LlamaEngine.score <qwenchat.engine.llama.LlamaEngine.score>` is what ranks
tools for a question (:mod:`qwenchat.routing`): the same continuation (the question)
after N prompts (one per tool), each in a sequence of its own in the vote's batch
context (:class:`~qwenchat.engine.batch.BatchContext`: one unified KV cache of up to
:data:`~qwenchat.engine.batch.MAX_SEQUENCES` sequences). The prompts stay in the
cache between calls, so the next question with the same tools evaluates only its own
tokens, N times, in one ``llama_decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from qwenchat.engine.batch import MAX_SEQUENCES, BatchContext
from qwenchat.errors import GenerationError

if TYPE_CHECKING:
    from qwenchat.engine.llama import LlamaEngine

_Row = tuple[int, int, int, int | None]
"""A token to evaluate: its id, position, sequence, and the token whose probability
after it is wanted (None: no logits)."""


class Scorer:
    """Log-likelihoods of a continuation after prompts, on a :class:`BatchContext` it
    shares with votes (a vote clears the cache; the scorer then starts again)."""

    def __init__(self, engine: LlamaEngine, context: BatchContext) -> None:
        self.engine = engine
        self.context = context
        self._held: dict[int, list[int]] = {}
        """Sequence -> the prompt tokens in its cache, all but the prompt's last (whose
        logits score the continuation's first token, so it is evaluated each time)."""

    def score(self, prompts: Sequence[list[int]], continuation: list[int]) -> list[float]:
        """``log P(continuation | prompt)`` for each prompt, in nats."""
        if not continuation:
            return [0.0] * len(prompts)
        scores: list[float] = []
        for start in range(0, len(prompts), MAX_SEQUENCES):
            scores += self._score(prompts[start : start + MAX_SEQUENCES], continuation)
        return scores

    def _score(self, prompts: Sequence[list[int]], continuation: list[int]) -> list[float]:
        ctx = self.context.ctx
        if self.context.user is not self:  # a vote used the cache since
            ctx.kv_cache_clear()
            self._held = {}
            self.context.user = self
        rows: list[_Row] = []
        for seq, prompt in enumerate(prompts):
            if not prompt:
                raise ValueError("a prompt to score after is empty")
            kept = prompt[:-1]
            if self._held.get(seq) == kept:
                ctx.kv_cache_seq_rm(seq, len(kept), -1)  # the last continuation
            else:
                ctx.kv_cache_seq_rm(seq, 0, -1)
                self._held.pop(seq, None)
                self._decode([(t, p, seq, None) for p, t in enumerate(kept)])
                self._held[seq] = kept
            tail = [prompt[-1], *continuation[:-1]]
            rows += [(t, len(kept) + i, seq, continuation[i]) for i, t in enumerate(tail)]
        logprobs = self._decode(rows)
        width = len(continuation)
        return [float(sum(logprobs[s * width : (s + 1) * width])) for s in range(len(prompts))]

    def _decode(self, rows: list[_Row]) -> list[float]:
        """Evaluate ``rows`` in batches of the context's size; return, for each row with
        a target, the log-probability of that target after it, in order. (Each row's
        logits are read as soon as its batch is decoded: a batch keeps only its own.)"""
        ctx, batch, size = self.context.ctx, self.context.batch, self.context.n_batch
        n_vocab = self.engine._llm.n_vocab()
        out: list[float] = []
        for begin in range(0, len(rows), size):
            chunk = rows[begin : begin + size]
            raw = batch.batch
            raw.n_tokens = len(chunk)
            for i, (token, pos, seq, target) in enumerate(chunk):
                raw.token[i] = token
                raw.pos[i] = pos
                raw.seq_id[i][0] = seq
                raw.n_seq_id[i] = 1
                raw.logits[i] = target is not None
            try:
                ctx.decode(batch)
            except RuntimeError as exc:
                raise GenerationError(f"llama.cpp failed scoring a text ({exc})") from None
            for i, (*_, target) in enumerate(chunk):
                if target is not None:
                    row = np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(n_vocab,))
                    out.append(_log_softmax_at(row, target))
        return out


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    top = float(logits.max())
    return float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))
