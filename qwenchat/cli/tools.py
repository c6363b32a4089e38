"""``qwenchat tools``: list, inspect and run tools without a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from qwenchat.cli.common import (
    EngineOption,
    McpConfigOption,
    ModelOption,
    NCtxOption,
    ThreadsOption,
    load_tool_registry,
    out,
    print_table,
    settings_with,
    terminal_approver,
)
from qwenchat.errors import InputError
from qwenchat.opening import sandbox_status
from qwenchat.safetext import shown_json

if TYPE_CHECKING:
    from qwenchat.tools import ToolRegistry

app = typer.Typer(help="Tools the model can call.", no_args_is_help=True)

ToolsDir = Annotated[
    Optional[list[Path]],
    typer.Option("--tools-dir", help="Load tools from this dir too (repeatable)."),
]


def _registry(tools_dir: list[Path] | None, mcp_config: Path | None) -> ToolRegistry:
    """The loaded tools (MCP servers' too), plus ``python`` (in a sandbox of its own) when
    a sandbox works here."""
    registry = load_tool_registry(tools_dir, mcp_config)
    settings = settings_with()
    if sandbox_status(settings)[0]:
        from qwenchat.sandbox import Sandbox
        from qwenchat.tools.python import python_tool

        registry.add(python_tool(Sandbox.from_settings(settings.sandbox)))
    return registry


@app.command("list")
def list_(tools_dir: ToolsDir = None, mcp_config: McpConfigOption = None) -> None:
    """Show every loaded tool: name, whether it is safe, what it does, where it comes from."""
    rows = [
        (tool.name, "yes" if tool.safe else "no", tool.description.split("\n", 1)[0], tool.source)
        for tool in _registry(tools_dir, mcp_config)
    ]
    print_table(("name", "safe", "description", "source"), rows)


@app.command("show")
def show(name: str, tools_dir: ToolsDir = None, mcp_config: McpConfigOption = None) -> None:
    """Print a tool's JSON schema, as the model sees it."""
    tool = _registry(tools_dir, mcp_config).select([name]).get(name)
    assert tool is not None
    print(shown_json(tool.spec(), indent=2))


@app.command("run")
def run(
    name: str,
    arguments: Annotated[str, typer.Argument(help="The arguments as a JSON object.")] = "{}",
    tools_dir: ToolsDir = None,
    mcp_config: McpConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve the call.")] = False,
) -> None:
    """Run one tool as a model's call would: validated, approved, with its timeout."""
    from qwenchat.agent import ApprovalPolicy, run_tool
    from qwenchat.errors import InputError, QwenchatError
    from qwenchat.tools import ToolArgumentError

    tool = _registry(tools_dir, mcp_config).select([name]).get(name)
    assert tool is not None
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InputError(f"arguments are not valid JSON ({exc}); e.g. '{{\"x\": 1}}'") from None
    try:
        validated = tool.check_arguments(parsed)
    except ToolArgumentError as exc:
        raise InputError(str(exc)) from None
    if not ApprovalPolicy(yes=yes, ask=terminal_approver()).approves(tool, validated):
        raise InputError(f"{name} is not marked safe: approve it with --yes")
    record = run_tool(tool, validated)
    if record.status != "ok":  # raised, timed out, or (python) the code failed: exit 1
        raise QwenchatError(record.result)
    out(record.result)


@app.command("eval")
def eval_(
    cases: Annotated[Path, typer.Argument(help="A JSONL file of cases (see docs/tools.md).")],
    tools_dir: ToolsDir = None,
    mcp_config: McpConfigOption = None,
    model: ModelOption = None,
    engine_url: EngineOption = None,
    n_ctx: NCtxOption = None,
    threads: ThreadsOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: the rates and every case.")
    ] = False,
) -> None:
    """Replay tool questions against the model: right calls, valid arguments, real answers.

    Every tool runs without asking (as with ask --yes), at temperature 0.
    """
    from qwenchat.agent import ApprovalPolicy
    from qwenchat.chat import Chat
    from qwenchat.engine.load import load_engine
    from qwenchat.tooleval import CaseResult, EvalCase, evaluate, load_cases

    loaded = load_cases(cases)
    registry = load_tool_registry(tools_dir, mcp_config)
    unknown = sorted({c.tool for c in loaded if c.tool} - set(registry.names()))
    if unknown:
        raise InputError(
            f"{cases} names tools that are not loaded: {', '.join(unknown)} (add --tools-dir)"
        )
    settings = settings_with(None, threads, n_ctx, engine_url)
    engine = load_engine(model, settings)

    def run(case: EvalCase) -> tuple[str, list, bool]:
        chat = Chat(
            settings=settings,
            engine=engine,
            tools=registry,
            approval=ApprovalPolicy(yes=True),
            temperature=0.0,
        )
        reply = chat.send(case.prompt)
        return reply.text, reply.tool_calls, reply.fallback

    def progress(i: int, result: CaseResult) -> None:
        if not as_json:
            mark = "ok " if result.answered else "call" if result.right_call else "-- "
            out(f"{i + 1:3} {mark} {result.prompt}")
            if not result.answered:
                out(f"      called {', '.join(result.calls) or 'nothing'}: {result.answer[:100]!r}")

    report = evaluate(loaded, run, engine.model_name, progress)
    summary = report.summary()
    if as_json:
        print(shown_json({**summary, "results": [c.model_dump() for c in report.cases]}))
        return
    out(
        f"{report.n} cases on {report.model}: right call {summary['right_call']:.0%},"
        f" valid arguments {summary['valid_arguments']:.0%},"
        f" answered {summary['answered']:.0%} (result shown instead {summary['fallback']:.0%})"
    )
