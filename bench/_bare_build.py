"""One llama.cpp build's prompt and decode speed, for llama_build.py (one run per process).

    python bench/_bare_build.py '<json config>'

The config gives model, threads, prompt_tokens, decode_tokens, extra_buffers (a
list: load the model once per entry, with or without llama.cpp's extra buffer types,
CPU repack and AMX) and rounds (how many times to measure each load, alternating
between them). Runs under whichever interpreter, and so whichever
llama-cpp-python build, starts it.

The prompt is the first ``prompt_tokens`` tokens of docs/architecture.md, evaluated
in one ``Llama.eval`` (batches of 512) on an empty cache; decoding is greedy, one
``eval`` per token. Prints one JSON line: per load, whether llama.cpp put weights in
a CPU_REPACK buffer (read from its load log) and its runs (pp: prompt tokens/s, tg:
decode tokens/s, the first decoded text, so a wrong build shows); and the build's
system info.
"""

import ctypes
import json
import sys
import time
from pathlib import Path

import llama_cpp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the guard's hook, also from another build's interpreter
from qwenchat.engine.llama_build import model_params  # noqa: E402

_log: list[str] = []


@llama_cpp.llama_log_callback
def _collect(_level: int, text: bytes, _data: ctypes.c_void_p) -> None:
    _log.append(text.decode(errors="replace"))


def load(cfg: dict, extra_buffers: bool) -> tuple[llama_cpp.Llama, bool]:
    """The model, and whether llama.cpp put its weights in a CPU_REPACK buffer."""
    _log.clear()
    with model_params(use_extra_bufts=extra_buffers):
        llm = llama_cpp.Llama(
            model_path=cfg["model"],
            n_ctx=cfg["prompt_tokens"] + cfg["decode_tokens"] + 16,
            n_batch=512,
            n_threads=cfg["threads"],
            n_threads_batch=cfg["threads"],
            n_gpu_layers=0,
            verbose=True,  # the load log says which buffers hold the weights
        )
    assert bool(llm.model_params.use_extra_bufts) == extra_buffers
    return llm, "CPU_REPACK model buffer" in "".join(_log)


def measure(llm: llama_cpp.Llama, prompt: list[int], decode: int) -> dict:
    """Prompt tokens/s of one eval of ``prompt``, then greedy decode tokens/s."""
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    pp = len(prompt) / (time.perf_counter() - start)
    out: list[int] = []
    start = time.perf_counter()
    for _ in range(decode):
        # The last token's logits: Llama keeps no scores unless logits_all.
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        out.append(int(np.argmax(logits)))
        llm.eval(out[-1:])
    tg = len(out) / (time.perf_counter() - start)
    return {"pp": pp, "tg": tg, "text": llm.detokenize(out[:16]).decode(errors="replace")}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    llama_cpp.llama_log_set(_collect, ctypes.c_void_p(0))
    models = [load(cfg, extra) for extra in cfg["extra_buffers"]]
    text = (REPO / "docs" / "architecture.md").read_text()
    prompt = models[0][0].tokenize(text.encode(), add_bos=False)[: cfg["prompt_tokens"]]
    if len(prompt) < cfg["prompt_tokens"]:
        raise SystemExit(f"docs/architecture.md has only {len(prompt)} tokens")
    runs: list[list[dict]] = [[] for _ in models]
    for i in range(cfg.get("rounds", 1)):
        order = list(range(len(models)))
        for m in order[i % len(order) :] + order[: i % len(order)]:  # rotate who goes first
            runs[m].append(measure(models[m][0], prompt, cfg["decode_tokens"]))
    result = {
        "loads": [
            {"extra_buffers": extra, "repack": repack, "runs": r}
            for extra, (_, repack), r in zip(cfg["extra_buffers"], models, runs, strict=True)
        ],
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
