"""A bare llama-cpp-python `ask`, the baseline of ask_e2e.py: load, answer one prompt, exit.

    python bench/_bare_ask.py MODEL PROMPT_TEXT MAX_TOKENS N_CTX THREADS TOP_K TOP_P REPEAT_PENALTY

PROMPT_TEXT is the rendered ChatML prompt (tokenized here with special=True).
ask_e2e.py passes qwenchat's defaults (n_ctx min(8192, the model's); greedy
sampling with its top_k, top_p and repeat penalty, min_p 0) and the threads it
gives qwenchat. GPU layers follow qwenchat's "auto" rule (all if llama.cpp can
offload, else 0); verbose=False. The answer is streamed to stdout token by
token, as `qwenchat ask` does. Imports nothing from qwenchat.
"""

import sys

import llama_cpp


def main() -> None:
    model, prompt_text = sys.argv[1], sys.argv[2]
    max_tokens, n_ctx, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    top_k, top_p, repeat_penalty = int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0,
        verbose=False,
    )
    prompt = llm.tokenize(prompt_text.encode(), add_bos=False, special=True)
    special = [
        llm.tokenize(t, add_bos=False, special=True) for t in (b"<|im_end|>", b"<|endoftext|>")
    ]
    eog = {llm.token_eos(), *(ids[0] for ids in special if len(ids) == 1)}
    out = sys.stdout.buffer
    tokens = llm.generate(
        prompt, temp=0.0, top_k=top_k, top_p=top_p, min_p=0.0, repeat_penalty=repeat_penalty
    )
    for n, token in enumerate(tokens, 1):
        if token in eog:
            break
        out.write(llm.detokenize([token]))
        out.flush()
        if n >= max_tokens:
            break
    tokens.close()
    out.write(b"\n")
    out.flush()


if __name__ == "__main__":
    main()
