"""The local engine: a GGUF model run in-process by llama-cpp-python.

One :class:`LlamaEngine` serves one conversation. llama.cpp keeps the KV cache
of the tokens it evaluated last, and ``Llama.generate`` re-evaluates only the
suffix after the longest common prefix; so the engine keeps each reply's
*generated* token ids and reuses them when that reply comes back as history,
otherwise re-tokenizing it could differ from what the model produced and break
the prefix at the first reply. Streaming uses ``Llama.generate`` with
incremental detokenization (one cached piece per token and an incremental
UTF-8 decoder), which ``bench/decode_speed.py`` measures against
``create_completion(stream=True)``.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np

from qwenchat.chatml import ENDOFTEXT, IM_END, IM_START, Segment
from qwenchat.config import GpuLayers, KvType, Sampling
from qwenchat.engine.base import Completion, Constraint, EngineInfo, Generation
from qwenchat.engine.driver import Decode, DrivenEngine, Piece, drive
from qwenchat.engine.grammar_sampler import DEFAULT_K, TopFirst
from qwenchat.engine.kvcache import MIN_SHARED, KVCache
from qwenchat.engine.llama_build import build_info, guard_note, model_params, use_extra_buffers
from qwenchat.errors import GenerationError, ModelError
from qwenchat.models import check_model_file, model_name
from qwenchat.models.gguf import GGUFInfo

if TYPE_CHECKING:
    from qwenchat.engine.batch import BatchContext
    from qwenchat.engine.scoring import Scorer

DEFAULT_MAX_CTX = 8192
KV_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}
MIN_HEAD = 64
"""A conversation's start shorter than this is not worth a KV state of its own."""
_REPLY_MEMO_SIZE = 64
_CONTROL_SPLIT = re.compile(f"({re.escape(IM_START)}|{re.escape(IM_END)})")


def default_threads() -> int:
    """The CPUs this process may run on: llama.cpp's own default is half of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def gpu_offload_supported() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


def offload_attempts(gpu_layers: GpuLayers, total: int, supported: bool) -> list[int]:
    """The ``n_gpu_layers`` values to load with, in order, until one works (-1: all).

    ``auto`` offloads every layer the build can; when that fails (not enough GPU
    memory) it backs off to half the layers, a quarter..., then the CPU. ``all`` and
    a number are tried as asked, and fail if they fail.
    """
    if gpu_layers == "auto":
        if not supported:
            return [0]
        backoff = []
        layers = total // 2
        while layers >= 1:
            backoff.append(layers)
            layers //= 2
        return [-1, *backoff, 0]
    return [-1 if gpu_layers == "all" else gpu_layers]


def load_llama(
    make: Callable[[int], llama_cpp.Llama], attempts: list[int]
) -> tuple[llama_cpp.Llama, int, str | None]:
    """Load with the first of ``attempts`` (GPU layer counts) that works; returns the
    model, the count it loaded with, and what the user should know if it backed off."""
    failures: list[str] = []
    for i, n_gpu in enumerate(attempts):
        try:
            llm = make(n_gpu)
        except (ValueError, RuntimeError, OSError) as exc:
            if i == len(attempts) - 1:
                raise
            failures.append(f"{'all' if n_gpu < 0 else n_gpu} layers: {exc}")
            continue
        note = None
        if failures:
            where = "on the CPU" if n_gpu == 0 else f"with {n_gpu} layers on the GPU"
            note = f"could not load with {'; '.join(failures)}; loaded {where} instead"
        return llm, n_gpu, note
    raise ValueError("no way to load the model was given")


class _Llama(llama_cpp.Llama):
    """llama-cpp-python's ``Llama`` with greedy sampling done on the logits row itself.

    Its ``sample`` hands every token to ``llama_sampler_sample``, which fills a
    151,936-entry candidate array before the pick: 1.2 ms a token on 2 cores, 3 % of the
    0.5B model's decoding (docs/benchmarks.md). When the chain is a greedy pick after
    the repeat penalty alone (temperature 0, no other penalty, processor or grammar),
    the same token comes from the row for a fraction of that: the penalty applied as
    llama.cpp's penalties sampler does (to the tokens this generation sampled, the last
    ``last_n_tokens_size`` of them; a positive logit divided by it, another multiplied,
    in float32), then the first of equal maxima, as llama.cpp's greedy sampler takes.
    A test compares the two paths token for token."""

    def _init_sampler(self, **kwargs: Any) -> Any:
        self._sampled: list[int] = []  # a generation starts: the penalty's window too
        return super()._init_sampler(**kwargs)

    def sample(self, **kwargs: Any) -> int:  # type: ignore[override]
        plain = all(kwargs.get(k) in v for k, v in _ONLY_GREEDY.items())
        if not plain or kwargs.get("idx") is None or not hasattr(self, "_sampled"):
            return int(super().sample(**kwargs))
        row = llama_cpp.llama_get_logits_ith(self._ctx.ctx, kwargs["idx"] - self.n_tokens)
        logits = np.ctypeslib.as_array(row, shape=(self._n_vocab,))
        penalty = np.float32(kwargs["repeat_penalty"])
        window = self._sampled[-self.last_n_tokens_size :] if self.last_n_tokens_size else []
        if penalty != 1 and window:
            seen = np.unique(np.asarray(window, dtype=np.intc))
            logits = logits.copy()
            hit = logits[seen]
            logits[seen] = np.where(hit <= 0, hit * penalty, hit / penalty)
        token = int(np.argmax(logits))
        self._sampled.append(token)
        return token


_ONLY_GREEDY: dict[str, tuple[object, ...]] = {
    "temp": (0.0,),
    "frequency_penalty": (0.0,),
    "presence_penalty": (0.0,),
    "logits_processor": (None,),
    "grammar": (None,),
    "mirostat_mode": (0,),
}
"""The sampling arguments under which llama.cpp's chain is the repeat penalty and a
greedy pick alone."""


class LlamaEngine(DrivenEngine):
    """A GGUF model loaded with llama-cpp-python, for one conversation."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        gpu_layers: GpuLayers = "auto",
        amx: bool = False,
        threads_batch: int | None = None,
        n_batch: int = 512,
        n_ubatch: int = 512,
        flash_attn: bool = False,
        kv_type: KvType = "f16",
    ) -> None:
        """``amx``: load with llama.cpp's extra buffer types even when the build has AMX
        (``engine.amx``; see :mod:`qwenchat.engine.llama_build`). The rest are
        llama.cpp's context parameters of the same names (``engine.*`` in the config;
        measured in docs/benchmarks.md); a quantised ``kv_type`` turns flash attention on,
        which llama.cpp needs for a quantised V cache."""
        self.path = path
        self.kv_cache: KVCache | None = None
        """Set to save the KV state after each reply and resume from it (sessions)."""
        self.gguf: GGUFInfo = check_model_file(path)
        n_train = self.gguf.context_length or DEFAULT_MAX_CTX
        ctx = n_ctx or min(DEFAULT_MAX_CTX, n_train)
        self.threads = threads or default_threads()
        # llama.cpp counts the output layer as one more offloadable layer.
        total = (self.gguf.block_count or 0) + 1
        supported = gpu_offload_supported()
        build = build_info()
        self.build_note = guard_note(build, amx)
        """What the AMX guard did for this build, for ``ask -v``, the TUI and doctor."""
        extra_buffers = use_extra_buffers(build, amx)

        ggml_type = KV_TYPES[kv_type]

        def make(n_gpu: int) -> llama_cpp.Llama:
            with model_params(use_extra_bufts=extra_buffers):
                return _Llama(
                    model_path=str(path),
                    n_ctx=ctx,
                    n_threads=self.threads,
                    n_threads_batch=threads_batch or self.threads,
                    n_batch=n_batch,
                    n_ubatch=min(n_ubatch, n_batch),
                    flash_attn=flash_attn or kv_type != "f16",
                    type_k=ggml_type,
                    type_v=ggml_type,
                    n_gpu_layers=n_gpu,
                    verbose=False,
                )

        try:
            self._llm, n_gpu, self.offload_note = load_llama(
                make, offload_attempts(gpu_layers, total, supported)
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load model {path}: {exc}") from None
        offloaded = total if n_gpu < 0 else min(n_gpu, total)
        self.gpu_layers_offloaded = offloaded if supported else 0
        self.gpu_layers_total = total
        self.extra_buffers = bool(self._llm.model_params.use_extra_bufts)
        """Whether the weights could go to llama.cpp's extra buffer types (CPU repack, AMX),
        as the model was really loaded."""
        self.amx_guarded = build.amx and not self.extra_buffers
        """Whether the AMX guard loaded the model without them."""
        self._control = {marker: self._special_id(marker) for marker in (IM_START, IM_END)}
        [self._user_token] = self._llm.tokenize(b"user", add_bos=False, special=False)
        self._eog = {self._control[IM_END], self._special_id(ENDOFTEXT), self._llm.token_eos()}
        self._pieces: dict[int, bytes] = {}
        self._replies: OrderedDict[str, list[int]] = OrderedDict()
        # The last prompt tokenized: fitting the context counts a prompt's tokens and
        # generating it tokenizes it again (20 ms for 5,500 tokens on 2 cores).
        self._last_tokenized: tuple[tuple[Segment, ...], list[int]] = ((), [])
        self._batch_context: BatchContext | None = None  # made by the first batch or score
        self._scorer: Scorer | None = None

    @property
    def model_name(self) -> str:
        return model_name(self.path)

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    def _special_id(self, text: str) -> int:
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(ids) != 1:
            raise ModelError(f"{self.path} has no {text} token: not a Qwen2.5 (ChatML) model")
        return ids[0]

    def tokenize(self, prompt: list[Segment]) -> list[int]:
        """Tokenize a rendered prompt the way the model saw its training data.

        Only ``<|im_start|>``/``<|im_end|>`` written by the template become
        control tokens; all text between them, template and content alike, is
        tokenized as one plain string, so BPE merges across the seams as with
        transformers, and ``<|im_end|>`` typed by a user stays text. A content
        span that is a reply this engine generated keeps its original ids.
        """
        key = tuple(prompt)
        if key == self._last_tokenized[0]:
            return list(self._last_tokenized[1])
        ids: list[int] = []
        text: list[str] = []

        def flush() -> None:
            if text:
                ids.extend(self._llm.tokenize("".join(text).encode(), add_bos=False, special=False))
                text.clear()

        for seg in prompt:
            reply = None if seg.special else self._replies.get(seg.text)
            if reply is not None:
                flush()
                ids.extend(reply)
            elif not seg.special:
                text.append(seg.text)
            else:
                for part in _CONTROL_SPLIT.split(seg.text):
                    if part in self._control:
                        flush()
                        ids.append(self._control[part])
                    elif part:
                        text.append(part)
        flush()
        self._last_tokenized = (key, list(ids))
        return ids

    def count_tokens(self, prompt: list[Segment]) -> int:
        return len(self.tokenize(prompt))

    def info(self) -> EngineInfo:
        offload = f"GPU layers {self.gpu_layers_offloaded}/{self.gpu_layers_total}"
        if not gpu_offload_supported():
            offload += " (this llama.cpp build is CPU-only)"
        quant = self.gguf.file_type or ""
        runs_on = (
            f"GPU {self.gpu_layers_offloaded}/{self.gpu_layers_total}"
            if self.gpu_layers_offloaded
            else "CPU"
        )
        if self.amx_guarded:  # loaded without llama.cpp's AMX path
            runs_on += " (AMX off)"
        return EngineInfo(
            model=self.model_name,
            n_ctx=self.n_ctx,
            runs_on=runs_on,
            summary=(
                f"model {self.model_name} ({quant or '?'}), n_ctx {self.n_ctx},"
                f" {self.threads} threads, {offload}"
            ),
            quant=quant,
            path=self.path,
            notes=[self.build_note] if self.build_note else [],
        )

    def use_kv_cache(self, cache: KVCache) -> bool:
        self.kv_cache = cache
        return True

    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        ids = self.tokenize(prompt)
        if self.kv_cache is not None:
            self._restore(self.kv_cache, ids)
        decode = _LlamaDecode(self, ids, self._cached_prefix(ids))
        if sampling.seed is not None:
            self._llm.set_seed(sampling.seed)
        processors: list[Callable[[np.ndarray, np.ndarray], np.ndarray]] = []
        if banned:
            processors.append(_Suppress([self._special_id(text) for text in banned]))
        if constraint is not None:
            processors.append(self._grammar(constraint.gbnf, sampling))
        # Lazily: it reads the prompt's last token only; _LlamaDecode reads the rest first.
        decode.tokens = self._llm.generate(
            ids,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=0.0,
            repeat_penalty=sampling.repeat_penalty,
            logits_processor=processors or None,
        )
        return decode

    def read_prompt(self, ids: list[int], decode: _LlamaDecode) -> bool:
        """Evaluate all but the last prompt token, a batch at a time, telling
        ``decode.on_prompt`` how far it got; False if interrupted between batches (what
        was read stays in the cache). The start of a conversation (:func:`head_length`)
        is saved as a KV state when read here, for the next conversation that starts so."""
        llm = self._llm
        start, end = self._cached_prefix(ids), len(ids) - 1
        if start >= end:
            return True
        llm.n_tokens = start
        llm._ctx.kv_cache_seq_rm(-1, start, -1)
        head = head_length(ids, self._control[IM_START], self._user_token)
        save_head = (
            self.kv_cache is not None
            and start < head <= end
            and head >= MIN_HEAD
            and not self.kv_cache.holds(ids[:head])
        )
        step = int(llm.n_batch)
        at = start
        for stop in sorted({head, end} if save_head else {end}):
            while at < stop:
                if decode.interrupted.is_set():
                    return False
                n = min(step, stop - at)
                llm.eval(ids[at : at + n])
                at += n
                if decode.on_prompt is not None:
                    decode.on_prompt(at - start, end - start)
            if save_head and stop == head:
                assert self.kv_cache is not None
                self.kv_cache.save(ids[:head], self._save_kv)
        return True

    def generate_batch(
        self, prompt: list[Segment], samplings: Sequence[Sampling], *, stop: Sequence[str] = ()
    ) -> list[Generation]:
        """The replies decoded together, the prompt evaluated once (:mod:`.batch`); one
        batch at a time (a new one ends the last)."""
        from qwenchat.engine.batch import MAX_SEQUENCES, Batch, BatchMember

        ids = self.tokenize(prompt)
        room = self.n_ctx - len(ids)
        if not 2 <= len(samplings) <= MAX_SEQUENCES or room <= 0:  # the driver says why
            return super().generate_batch(prompt, samplings, stop=stop)
        budget = min(max(s.max_tokens for s in samplings), room)
        batch = Batch(self, self._batch_context_made(), ids, samplings, stop, budget)

        def reply(number: int) -> Generation:
            member = BatchMember(batch, number)
            sampling = samplings[number]
            return Generation(lambda gen: drive(member, gen, prompt, sampling, (), stop, None))

        return [reply(number) for number in range(len(samplings))]

    def score(self, prompts: Sequence[list[Segment]], continuation: str) -> list[float] | None:
        """See :meth:`qwenchat.engine.base.Engine.score`: all prompts in one batch
        (:mod:`.scoring`), which keeps them cached for the next continuation."""
        from qwenchat.engine.scoring import Scorer

        if self._scorer is None:
            self._scorer = Scorer(self, self._batch_context_made())
        text = self._llm.tokenize(continuation.encode(), add_bos=False, special=False)
        return self._scorer.score([self.tokenize(p) for p in prompts], text)

    def _batch_context_made(self) -> BatchContext:
        from qwenchat.engine.batch import BatchContext

        if self._batch_context is None:
            self._batch_context = BatchContext(self)
        return self._batch_context

    def _grammar(self, gbnf: str, sampling: Sampling) -> TopFirst:
        # Not llama-cpp-python's grammar= : its chain checks the whole vocabulary per token.
        greedy = sampling.temperature <= 0
        k = 1 if greedy else (sampling.top_k if sampling.top_k > 0 else DEFAULT_K)
        return TopFirst(
            self._llm._model.vocab,
            gbnf,
            k,
            penalty=sampling.repeat_penalty,
            last_n=self._llm.last_n_tokens_size,
        )

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._llm.detokenize([token])
        return piece

    def _cached_prefix(self, ids: list[int]) -> int:
        """How many prompt tokens llama.cpp will take from its KV cache."""
        held = self._llm.input_ids[: self._llm.n_tokens]
        n = 0
        for a, b in zip(held, ids, strict=False):
            if a != b:
                break
            n += 1
        # With nothing left to evaluate, llama.cpp replays the last token for fresh logits.
        return n - 1 if n == len(ids) and n > 0 else n

    def _finished(self, completion: Completion, ids: list[int]) -> None:
        self._remember(completion.text, ids)
        if self.kv_cache is not None and completion.finish_reason != "cancelled":
            self.kv_cache.save(self._llm.input_ids[: self._llm.n_tokens].tolist(), self._save_kv)

    def _restore(self, cache: KVCache, ids: list[int]) -> None:
        """Load the saved state sharing the longest prefix with ``ids``, when it shares
        more than llama.cpp's cache holds now; a state that fails to load is deleted and
        the next tried."""
        held = self._cached_prefix(ids)
        while (found := cache.find(ids, at_least=held + MIN_SHARED)) is not None:
            if self._load_kv(found.path, ids, found.shared):
                return
            cache.discard(found.path)

    def _load_kv(self, path: Path, ids: list[int], shared: int) -> bool:
        """Load a state and keep its first ``shared`` tokens, which must be ``ids``'s."""
        ctx = self._llm._ctx
        ctx.kv_cache_seq_rm(-1, 0, -1)
        self._llm.n_tokens = 0
        capacity = self.n_ctx
        tokens = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            ctx.ctx, os.fsencode(path), 0, tokens, capacity, ctypes.byref(count)
        )
        loaded = list(tokens[: min(count.value, shared)])
        if not read or len(loaded) < shared or loaded != ids[:shared]:
            self._llm.reset()
            ctx.kv_cache_clear()
            return False
        ctx.kv_cache_seq_rm(-1, shared, -1)  # what follows the common prefix
        self._llm.input_ids[:shared] = loaded
        self._llm.n_tokens = shared
        return True

    def _save_kv(self, path: Path) -> bool:
        n = self._llm.n_tokens
        tokens = (llama_cpp.llama_token * n)(*self._llm.input_ids[:n].tolist())
        written = llama_cpp.llama_state_seq_save_file(
            self._llm._ctx.ctx, os.fsencode(path), 0, tokens, n
        )
        return bool(written)

    def _remember(self, text: str, ids: list[int]) -> None:
        if not text:
            return
        self._last_tokenized = ((), [])  # a remembered reply can change how prompts tokenize
        self._replies[text] = ids
        self._replies.move_to_end(text)
        while len(self._replies) > _REPLY_MEMO_SIZE:
            self._replies.popitem(last=False)


class _LlamaDecode(Decode):
    """One reply sampled by ``Llama.generate``, detokenized incrementally."""

    def __init__(self, engine: LlamaEngine, ids: list[int], cached: int) -> None:
        super().__init__(prompt_tokens=len(ids), cached_tokens=cached)
        self.engine = engine
        self.ids = ids
        self.interrupted = threading.Event()
        self.tokens: Generator[int, None, None] | None = None
        self.out: list[int] = []
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def interrupt(self) -> None:
        self.interrupted.set()  # checked between the batches a prompt is read in

    def pieces(self) -> Iterator[Piece]:
        assert self.tokens is not None
        engine = self.engine
        try:
            if not engine.read_prompt(self.ids, self):
                return
            for token in self.tokens:
                if token in engine._eog:
                    self.ended = True
                    return
                self.out.append(token)
                yield Piece(self.decoder.decode(engine._piece(token)))
        except RuntimeError as exc:
            raise GenerationError(f"llama.cpp failed while generating: {exc}") from None
        finally:
            self.tokens.close()

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)

    def finish(self, completion: Completion) -> None:
        self.engine._finished(completion, self.out)


class _Suppress:
    """A logits processor that makes some tokens impossible to sample."""

    def __init__(self, token_ids: list[int]) -> None:
        self.token_ids = token_ids

    def __call__(self, _input_ids: object, logits: np.ndarray) -> np.ndarray:
        logits[self.token_ids] = -np.inf
        return logits


def head_length(ids: Sequence[int], im_start: int, user: int) -> int:
    """Where a conversation's head ends: the tokens before its first user turn (the
    system message with the tools block, a persona's greeting), the part that every
    conversation with the same start shares; 0 if it has no user turn."""
    for i in range(len(ids) - 1):
        if ids[i] == im_start and ids[i + 1] == user:
            return i
    return 0
