"""A remote engine: the same prompts, generated on an OpenAI-compatible server over HTTP.

qwenchat still renders the ChatML prompt itself and sends it as raw text to the
server's ``/v1/completions`` (never ``/v1/chat/completions``, whose template would
be the server's), streams the reply as server-sent events, and parses tool calls
itself. Only the standard library is used (``http.client``).

What the engine does itself, the same on every server:

* **Stop strings** are watched by the driver (:mod:`qwenchat.engine.driver`), not
  sent: servers cut a stop string out of the text, while the
  :class:`~qwenchat.engine.base.Engine` contract keeps the text up to the end of the
  chunk (one token on the servers below) that completes it, as the local engine
  does. The connection is then closed, which stops the server.
* **End of turn**: a ``<|im_end|>``/``<|endoftext|>`` that reaches the text (a
  server told to keep special tokens) ends the reply and is cut, as locally.
* **Cancellation**: :meth:`Generation.cancel` from any thread shuts the socket down
  (:meth:`Decode.interrupt`),
  so a read that waits on a slow server ends at once, and closing the connection
  makes the server stop generating.
* **Usage**: from the server's usage chunk when it sends one
  (``stream_options.include_usage``); otherwise the prompt is counted with the
  server's tokenizer and the reply by tokenizing its text (or, with no tokenizer,
  one token per streamed chunk). ``cached_tokens`` comes from the server
  (``prompt_tokens_details.cached_tokens``, or llama-server's ``timings.cache_n``),
  else it is 0: llama-cpp-python's server reuses its KV cache but does not say so.
* **Timings** come from the arrival times of the chunks: time to the first text,
  decode tokens/s between the first and the last.

The per-server notes (llama-cpp-python, llama-server, vLLM, Ollama) are with the
dialects, in :mod:`qwenchat.engine.remote.dialects`.

Banned tokens (``<tool_call>`` in the agent's answer-only round) are sent as
``logit_bias`` -100 on their ids, where the server has a tokenizer; otherwise they
are not enforced (the agent loop copes with a call it did not want).

Known limit: servers take the prompt as one string and parse special tokens in all
of it, so ``<|im_end|>`` typed *inside a message* becomes a control token on a
remote server, where the local engine keeps it as text.

The package, one module per concern: :mod:`~qwenchat.engine.remote.transport` (HTTP
requests and their failures as one-line errors), :mod:`~qwenchat.engine.remote.streaming`
(server-sent events and NDJSON read into chunks), :mod:`~qwenchat.engine.remote.dialects`
(one object per kind of server: endpoints, request bodies, grammars, tokenizers) and
:mod:`~qwenchat.engine.remote.engine` (:class:`RemoteEngine` and its streamed replies). What
other modules import from the package is re-exported here.
"""

from qwenchat.engine.remote.engine import RemoteEngine, estimate_tokens

__all__ = ["RemoteEngine", "estimate_tokens"]
