"""``qwenchat ask``: one prompt, one answer, for shell pipelines."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from qwenchat.cli.common import (
    EXIT_INTERRUPTED,
    PYTHON,
    EngineOption,
    GpuLayersOption,
    KvTypeOption,
    McpConfigOption,
    ModelOption,
    NCtxOption,
    PromptOption,
    SystemOption,
    ThreadsOption,
    err,
    load_tool_registry,
    settings_with,
    terminal_approver,
    validated,
)
from qwenchat.cli.completion import complete_personas, complete_sessions, complete_tools
from qwenchat.cli.reading import PromptBar
from qwenchat.opening import describe_sandbox, sandbox_status
from qwenchat.safetext import shown, shown_json

if TYPE_CHECKING:
    from qwenchat.agent import Event
    from qwenchat.chat import Reply
    from qwenchat.config import Settings
    from qwenchat.store import SessionStore


def read_stdin() -> str:
    """Piped input as text; binary or non-UTF-8 input is an :class:`InputError`."""
    from qwenchat.errors import InputError

    data = sys.stdin.buffer.read()
    if b"\x00" in data:
        raise InputError(
            "stdin is binary (it holds NUL bytes): pipe text, e.g. the output of strings"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}):"
            " convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def build_prompt(prompt: str, stdin_text: str) -> str:
    """Join the argument prompt and piped input: the input first, fenced, then the instruction."""
    if not stdin_text.strip():
        return prompt
    if not prompt:
        return stdin_text
    fence = "```"
    while fence in stdin_text:
        fence += "`"
    return f"{fence}\n{stdin_text.rstrip()}\n{fence}\n\n{prompt}"


def describe_reply(reply: Reply) -> str:
    """One line of a reply's figures."""
    usage, timings = reply.usage, reply.timings
    return (
        f"{usage.prompt_tokens} prompt tokens ({usage.cached_tokens} from cache), "
        f"{usage.completion_tokens} generated; first token {timings.ttft_s:.2f} s, "
        f"{timings.decode_tokens_per_s:.1f} tokens/s, {timings.total_s:.2f} s in all"
    )


def warn(message: str) -> None:
    err(f"warning: {message}")


def _store() -> SessionStore:
    """The session store; warns when a damaged file was moved aside."""
    from qwenchat.store import SessionStore, default_store_path

    store = SessionStore(default_store_path())
    if store.notice:
        warn(store.notice)
    return store


def code_runs_allowed(settings: Settings, *, required: bool, offered: bool) -> bool:
    """Whether model-written code can run (checked before the model loads).

    ``required`` (``--tir``, ``--tool python``): no sandbox is an error. ``offered``
    (``--tools``): no sandbox leaves the python tool out, with a warning. Either way a
    weaker layer is a warning.
    """
    if not (required or offered):
        return False
    usable, warning = sandbox_status(settings)
    if not usable and required:
        from qwenchat.sandbox import SandboxError

        raise SandboxError(f"cannot run the model's code: {warning}")
    if warning:
        err(f"warning: {'' if usable else 'the python tool is off: '}{warning}")
    return usable


def _progress(event: Event) -> None:
    """Tool-call progress for a person watching stderr."""
    from qwenchat.agent import Notice, ToolCallFinished, ToolCallStarted

    if isinstance(event, ToolCallStarted):
        err(f"→ {event.name} {shown_json(event.arguments)}")
    elif isinstance(event, ToolCallFinished):
        record = event.record
        result = record.result if len(record.result) <= 200 else record.result[:200] + "…"
        err(f"← {record.name} [{record.status}, {record.duration_s:.2f} s] {result}")
    elif isinstance(event, Notice):
        err(event.text)


def ask(
    ctx: typer.Context,
    prompt: Annotated[
        Optional[list[str]], typer.Argument(help="The prompt; piped stdin is added as context.")
    ] = None,
    system: SystemOption = None,
    prompt_name: PromptOption = None,
    persona_name: Annotated[
        Optional[str],
        typer.Option(
            "--persona",
            help="Play a persona: its system prompt, greeting, sampling.",
            autocompletion=complete_personas,
        ),
    ] = None,
    model: ModelOption = None,
    temperature: Annotated[
        Optional[float], typer.Option(help="Sampling temperature (0 = greedy).")
    ] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Most tokens in each reply.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.")] = None,
    gpu_layers: GpuLayersOption = None,
    threads: ThreadsOption = None,
    kv_type: KvTypeOption = None,
    n_ctx: NCtxOption = None,
    engine_url: EngineOption = None,
    use_tools: Annotated[
        bool, typer.Option("--tools", help="Let the model call every loaded tool.")
    ] = False,
    tool: Annotated[
        Optional[list[str]],
        typer.Option(
            "--tool",
            help="Let the model call this tool (repeatable).",
            autocompletion=complete_tools,
        ),
    ] = None,
    tools_dir: Annotated[
        Optional[list[Path]],
        typer.Option("--tools-dir", help="Load tools from this dir too (repeatable)."),
    ] = None,
    mcp_config: McpConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every tool call.")] = False,
    allow: Annotated[
        Optional[list[str]],
        typer.Option("--allow", help="Approve calls of this tool (repeatable)."),
    ] = None,
    session: Annotated[
        Optional[str],
        typer.Option(
            "--session",
            help="Continue this session (an id, or a name: started if new); each turn is saved"
            " as it happens.",
            autocompletion=complete_sessions,
        ),
    ] = None,
    retry: Annotated[
        bool,
        typer.Option(
            "--retry", help="Answer the session's last message again (the old answer is kept)."
        ),
    ] = False,
    tir: Annotated[
        bool,
        typer.Option(
            "--tir",
            help="Tool-integrated reasoning: the model's Python runs in the sandbox and it"
            " reads the output; the final \\boxed{} answer is printed on its own last line.",
        ),
    ] = False,
    samples: Annotated[
        Optional[int],
        typer.Option(
            "--samples",
            help="Sample this many solutions and answer with the one most of them reach"
            " (self-consistency voting; with --tir or without tools). Default: the config's"
            " tir.samples with --tir, else 1.",
        ),
    ] = None,
    max_rounds: Annotated[
        int, typer.Option(help="Most model replies in one tool-calling or TIR turn.")
    ] = 8,
    schema_text: Annotated[
        Optional[str],
        typer.Option(
            "--schema",
            help="Answer with JSON that follows this schema (grammar-enforced): a JSON Schema"
            " file, inline JSON, or fields like 'name, age int, tags list'.",
        ),
    ] = None,
    files: Annotated[
        Optional[list[str]],
        typer.Option(
            "--file",
            "-f",
            help="Put a file into the prompt: text, PDF, DOCX, HTML...; a directory, a glob"
            " ('docs/*.md'), or - for stdin. Repeatable.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Report the model load and reply figures on stderr."),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object with text, usage, timings and tool calls."
        ),
    ] = False,
) -> None:
    """Answer one prompt and exit: `git diff | qwenchat ask "write a commit message"`."""
    from qwenchat.attachments import read_attachments
    from qwenchat.errors import InputError

    piped = sys.stdin is not None and not sys.stdin.isatty()
    attachments = read_attachments(files or [], stdin=read_stdin)  # "-": stdin, read here
    stdin_text = read_stdin() if piped and "-" not in (files or []) else ""
    # Python hands undecodable argv bytes over as lone surrogates, which no store or
    # tokenizer takes: they become U+FFFD, as invalid UTF-8 does everywhere else.
    words = " ".join(prompt or []).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = build_prompt(words.strip(), stdin_text)
    from qwenchat.config import MAX_SAMPLES

    if samples is not None and not 1 <= samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be from 1 to {MAX_SAMPLES}, not {samples}")
    if retry and (text.strip() or attachments or not session):
        raise InputError("--retry needs --session NAME and no prompt: it answers the last one")
    if not text.strip() and not retry and not attachments:
        raise InputError(
            'empty prompt: give one as an argument or on stdin, e.g. qwenchat ask "hello"'
        )
    schema = None
    if schema_text is not None:
        from qwenchat.schema import Schema

        if use_tools or tool or tir or retry or samples:
            raise InputError(
                "--schema cannot be used with --tools, --tool, --tir, --samples or --retry"
            )
        schema = Schema.parse(schema_text)
    from qwenchat.opening import (
        choose_role,
        continue_session,
        opening_messages,
        use_kv_cache,
    )

    role = choose_role(
        settings_with(gpu_layers, threads, n_ctx, engine_url, kv_type),
        system=system,
        prompt=prompt_name,
        persona=persona_name,
        model=model,
    )
    settings = role.settings
    overrides = {
        k: v
        for k, v in {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}.items()
        if v is not None
    }
    from qwenchat.config import Sampling

    validated(Sampling, settings.sampling.model_dump(), overrides)  # bad values: one line, now
    wanted = set(tool or ())
    code_ok = code_runs_allowed(settings, required=tir or PYTHON in wanted, offered=use_tools)
    from qwenchat.engine.load import EngineLoad, load_engine

    # The model loads while the tools and the agent loop are imported and set up. A
    # caller that invokes the app in-process may give its own engine factory as ``obj``.
    loading = EngineLoad(role.model, settings, warn=warn, load=ctx.obj or load_engine)
    from qwenchat.agent import AgentOptions, ApprovalPolicy, Notice, TextDelta
    from qwenchat.chat import Chat

    registry = None
    if use_tools or wanted - {PYTHON}:
        registry = load_tool_registry(tools_dir, mcp_config)
        if wanted - {PYTHON}:
            registry = registry.select([name for name in tool or () if name != PYTHON])
    if session:
        history, recorder = continue_session(_store(), session, role, warn)
    else:
        history, recorder = opening_messages(role), None
    engine = loading.result()
    use_kv_cache(engine, settings)
    if verbose:
        for line in engine.info().describe().splitlines():  # one prefixed line each
            err(line)
    if verbose and code_ok:
        err(describe_sandbox(settings))
    chat = Chat(
        system=role.system,
        settings=settings,
        engine=engine,
        tools=registry,
        python=code_ok and (use_tools or PYTHON in wanted),
        tir=tir,
        samples=samples,
        approval=ApprovalPolicy(yes=yes, allow=set(allow or ()), ask=terminal_approver()),
        agent=AgentOptions(max_rounds=max_rounds),
        history=history,
        recorder=recorder,
        **overrides,
    )
    stream = chat.retry() if retry else chat.stream(text, schema=schema, attachments=attachments)
    signal.signal(signal.SIGINT, lambda *_: stream.cancel())
    show_progress = sys.stderr.isatty()
    bar = PromptBar() if show_progress else None
    try:
        for event in stream.events(on_prompt=bar):
            if isinstance(event, TextDelta):
                if not as_json:
                    sys.stdout.write(shown(event.text))
                    sys.stdout.flush()
            elif show_progress or isinstance(event, Notice):  # notices matter in pipelines
                _progress(event)
    finally:
        if bar is not None:
            bar.close()
    chat.close()
    reply = stream.reply
    assert reply is not None
    if as_json:
        fields = {"text", "model", "usage", "timings"}
        fields |= {"tool_calls", "rounds"} if chat.tools or tir else set()
        voted = reply.samples is not None
        fields |= {"answer"} if tir or voted else set()
        fields |= {"votes", "samples", "sample_replies"} if voted else set()
        fields |= {"data"} if schema is not None else set()
        print(shown_json(reply.model_dump(include=fields)))
    else:
        if not reply.text.endswith("\n"):
            sys.stdout.write("\n")
        if tir or reply.samples is not None:
            sys.stdout.write(f"\nAnswer: {shown(reply.answer)}\n" if reply.answer else "")
            if not reply.answer and reply.finish_reason != "cancelled":
                err("no \\boxed{} answer in the reply")
    if verbose:
        err(describe_reply(reply))
    if reply.finish_reason == "cancelled":
        err("stopped")
        raise typer.Exit(EXIT_INTERRUPTED)
