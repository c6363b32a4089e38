"""qwenchat's engine reading a prompt and decoding, for llama_bench.py (one process per run).

    python bench/_engine_speed.py '<json config>'

The config gives model, threads, n_batch, prompt (tokens) and decode (tokens). As
llama-bench does, one short untimed generation warms the process up first (the first
pass over the mmap'd weights pays their page faults). The prompt run is a user message
padded to ``prompt`` tokens, read through ``LlamaEngine.generate`` with one token to
write, and gives two figures:

  pp       the tokens read in batches / the time until the last batch was read (the
           engine's ``on_prompt`` reports), what ``llama-bench -p`` measures
  pp_ttft  all prompt tokens / the time to the first token, which also holds the last
           prompt token's single-token decode (llama-cpp-python's ``generate`` always
           evaluates the last token itself) and the first sampling

The decode run asks for a long answer and times ``decode`` tokens the way the app
reports it (``Completion.timings.decode_tokens_per_s``), greedily (``tg``) and with the
default sampling (``tg_sampled``). Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qwenchat.chatml import SystemMessage, UserMessage, render_segments  # noqa: E402
from qwenchat.config import Sampling  # noqa: E402
from qwenchat.engine.llama import LlamaEngine  # noqa: E402


def main() -> None:
    cfg = json.loads(sys.argv[1])
    engine = LlamaEngine(
        Path(cfg["model"]),
        n_ctx=cfg["prompt"] + cfg["decode"] + 64,
        threads=cfg["threads"],
        n_batch=cfg["n_batch"],
        n_ubatch=cfg["n_batch"],
        gpu_layers=0,
    )
    text = (REPO / "docs" / "architecture.md").read_text()
    words = text.split()
    # The longest start of the document whose whole prompt fits the prompt size.
    low, high = 0, len(words)
    while high - low > 1:
        mid = (low + high) // 2
        prompt = render_segments([UserMessage(content=" ".join(words[:mid]))])
        low, high = (mid, high) if engine.count_tokens(prompt) <= cfg["prompt"] else (low, mid)
    prompt = render_segments([UserMessage(content=" ".join(words[:low]))])
    # The warm-up shares only <|im_start|> with the timed prompt (a system turn first).
    warm = render_segments([SystemMessage(content="Warm up."), UserMessage(content="Hi")])
    "".join(engine.generate(warm, Sampling(temperature=0, max_tokens=1)))
    batches: list[tuple[float, int]] = []
    engine.on_prompt = lambda done, total: batches.append((time.perf_counter(), done))
    started = time.perf_counter()
    read = engine.generate(prompt, Sampling(temperature=0, max_tokens=1))
    "".join(read)
    engine.on_prompt = None
    assert read.result is not None and batches
    read_at, read_tokens = batches[-1]
    usage = read.result.usage
    pp = read_tokens / (read_at - started)
    pp_ttft = (usage.prompt_tokens - usage.cached_tokens) / read.result.timings.ttft_s
    ask = render_segments([UserMessage(content="Write the numbers from 1 to 400, one per line.")])
    write = engine.generate(ask, Sampling(temperature=0, max_tokens=cfg["decode"]))
    "".join(write)
    assert write.result is not None
    # The app's default sampling (temperature 0.7, top-k, top-p) goes through llama.cpp's
    # sampler chain, not the greedy row pick: reported beside it.
    sampled = engine.generate(ask, Sampling(seed=1, max_tokens=cfg["decode"]))
    "".join(sampled)
    assert sampled.result is not None
    print(
        json.dumps(
            {
                "pp": pp,
                "pp_ttft": pp_ttft,
                "prompt_tokens": usage.prompt_tokens,
                "read_in_batches": read_tokens,
                "tg": write.result.timings.decode_tokens_per_s,
                "tg_sampled": sampled.result.timings.decode_tokens_per_s,
                "decoded": write.result.usage.completion_tokens,
            }
        )
    )


if __name__ == "__main__":
    main()
