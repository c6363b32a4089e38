"""Bare llama-cpp-python decode loops, the baselines of decode_speed.py (one run per process).

    python bench/_bare_decode.py '<json config>'

The config gives model, mode ("generate" or "completion"), prompt (the rendered
ChatML text, tokenized here with special=True), max_tokens, threads, n_ctx,
gpu_layers ("auto" = all if llama.cpp can offload, else 0: qwenchat's rule), seed
and sampling (top_k, top_p, repeat_penalty; temperature 0, min_p 0).

Prints one JSON line: rate (decode tokens/s), sampled (tokens sampled, an
end-of-generation token included), completion_tokens (text tokens), finish,
prompt_tokens and text. The rate is measured as qwenchat measures it:
(sampled - 1) / (time of the last sampled token - time of the first).

Imports nothing from qwenchat, so the baseline carries none of its code.
"""

import json
import sys
import time

import llama_cpp


def main() -> None:
    cfg = json.loads(sys.argv[1])
    gpu = cfg["gpu_layers"]
    if gpu == "auto":
        gpu = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    llm = llama_cpp.Llama(
        model_path=cfg["model"],
        n_ctx=cfg["n_ctx"],
        n_threads=cfg["threads"],
        n_threads_batch=cfg["threads"],
        n_gpu_layers=int(gpu),
        seed=cfg["seed"],
        verbose=False,
    )
    prompt = llm.tokenize(cfg["prompt"].encode(), add_bos=False, special=True)
    run = generate if cfg["mode"] == "generate" else completion
    result = run(llm, prompt, cfg)
    result["prompt_tokens"] = len(prompt)
    print(json.dumps(result, ensure_ascii=False))


def _rate(sampled: int, first: float, last: float) -> float:
    return (sampled - 1) / (last - first) if sampled > 1 and last > first else 0.0


def generate(llm: llama_cpp.Llama, prompt: list[int], cfg: dict) -> dict:
    """``Llama.generate`` with per-token ``detokenize``: the loop qwenchat builds on."""
    special = [
        llm.tokenize(t, add_bos=False, special=True) for t in (b"<|im_end|>", b"<|endoftext|>")
    ]
    eog = {llm.token_eos(), *(ids[0] for ids in special if len(ids) == 1)}
    max_tokens = cfg["max_tokens"]
    s = cfg["sampling"]
    pieces: list[bytes] = []
    first = last = 0.0
    sampled = 0
    finish = "length"
    tokens = llm.generate(
        prompt,
        temp=0.0,
        top_k=s["top_k"],
        top_p=s["top_p"],
        min_p=0.0,
        repeat_penalty=s["repeat_penalty"],
    )
    for token in tokens:
        last = time.perf_counter()
        if not sampled:
            first = last
        sampled += 1
        if token in eog:
            finish = "stop"
            break
        pieces.append(llm.detokenize([token]))
        if len(pieces) >= max_tokens:
            break
    tokens.close()
    return {
        "rate": _rate(sampled, first, last),
        "sampled": sampled,
        "completion_tokens": len(pieces),
        "finish": finish,
        "text": b"".join(pieces).decode("utf-8", errors="replace"),
    }


def completion(llm: llama_cpp.Llama, prompt: list[int], cfg: dict) -> dict:
    """``Llama.create_completion(stream=True)``, timed over its chunks.

    A chunk is stamped when it arrives. Chunks before the last carry one sampled
    token each (a token ending inside a UTF-8 character is held back and joins a
    later chunk). The last chunk says why it ended: after an end-of-generation
    token ("stop") it stands for that token, as qwenchat counts it; after
    max_tokens ("length") it carries no new token unless held-back text.
    The number of tokens sampled comes from llama.cpp's evaluated-token count.
    """
    s = cfg["sampling"]
    stamps: list[float] = []
    parts: list[str] = []
    finish = "length"
    for chunk in llm.create_completion(
        prompt,
        max_tokens=cfg["max_tokens"],
        temperature=0.0,
        top_k=s["top_k"],
        top_p=s["top_p"],
        min_p=0.0,
        repeat_penalty=s["repeat_penalty"],
        seed=cfg["seed"],
        stream=True,
    ):
        now = time.perf_counter()
        choice = chunk["choices"][0]
        reason = choice["finish_reason"]
        if reason is None or reason == "stop" or choice["text"]:
            stamps.append(now)
        if reason is not None:
            finish = reason
        parts.append(choice["text"])
    # generate() evaluates each sampled token before sampling the next, so the
    # last one sampled (the max_tokens-th or the end-of-generation one) is not evaluated.
    sampled = llm.n_tokens - len(prompt) + 1
    return {
        "rate": _rate(sampled, stamps[0], stamps[-1]) if stamps else 0.0,
        "sampled": sampled,
        "completion_tokens": sampled - (1 if finish == "stop" else 0),
        "finish": finish,
        "text": "".join(parts),
    }


if __name__ == "__main__":
    main()
