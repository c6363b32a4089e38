"""qwenchat's engine reading a prompt and decoding, for llama_bench.py (one process per run).

    python bench/_engine_speed.py '<json config>'

The config gives model, threads, n_batch, prompt (tokens) and decode (tokens). The
prompt run is a user message padded to ``prompt`` tokens, read through
``LlamaEngine.generate`` with one token to write: prompt tokens / time to the first
token. The decode run asks for a long answer and times ``decode`` tokens the way the
app reports it (``Completion.timings.decode_tokens_per_s``). Prints one JSON line.
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qwenchat.chatml import UserMessage, render_segments  # noqa: E402
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
    read = engine.generate(prompt, Sampling(temperature=0, max_tokens=1))
    "".join(read)
    assert read.result is not None
    n_prompt = read.result.usage.prompt_tokens
    pp = n_prompt / read.result.timings.ttft_s
    ask = render_segments([UserMessage(content="Write the numbers from 1 to 400, one per line.")])
    write = engine.generate(ask, Sampling(temperature=0, max_tokens=cfg["decode"]))
    "".join(write)
    assert write.result is not None
    print(
        json.dumps(
            {
                "pp": pp,
                "prompt_tokens": n_prompt,
                "tg": write.result.timings.decode_tokens_per_s,
                "decoded": write.result.usage.completion_tokens,
            }
        )
    )


if __name__ == "__main__":
    main()
