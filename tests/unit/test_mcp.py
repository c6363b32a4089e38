"""MCP servers' tools in the registry, against real servers written with the SDK
(tests/mcp_server.py) over stdio and streamable HTTP: calls that work, and servers that
fail to start, crash, hang, print garbage or report errors, each one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwenchat.agent import run_tool
from qwenchat.errors import InputError
from qwenchat.mcp.config import McpConfig, load_config
from qwenchat.mcp.tools import McpServers
from qwenchat.tools import ToolRegistry
from tests.unit.test_cli import run_cli

SERVER = str(Path(__file__).resolve().parents[1] / "mcp_server.py")


def stdio(*flags: str, **extra: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [SERVER, *flags], "timeout": 5, **extra}


def servers(tmp_path: Path, **entries: dict[str, object]) -> McpServers:
    return McpServers(McpConfig.model_validate({"mcpServers": entries}), tmp_path / "logs")


def loaded(group: McpServers) -> tuple[ToolRegistry, list[str]]:
    registry, warnings = ToolRegistry(), []
    group.add_tools(registry, warnings.append)
    return registry, warnings


def call(registry: ToolRegistry, name: str, **arguments: object) -> tuple[str, str]:
    tool = registry.get(name)
    assert tool is not None
    record = run_tool(tool, tool.check_arguments(arguments))
    return record.status, record.result


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRegistry]:
    group = servers(tmp_path_factory.mktemp("mcp"), test=stdio(safe=["add"]))
    registry, warnings = loaded(group)
    assert warnings == []
    yield registry
    group.close()


def test_a_stdio_servers_tools_join_the_registry_with_their_schemas(tools: ToolRegistry) -> None:
    assert {"add", "shipment_status", "crash", "hang", "fail"} <= set(tools.names())
    add = tools.get("add")
    assert add is not None and add.source == "mcp:test" and add.safe
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["b"]["description"] == "the second number"
    shipment = tools.get("shipment_status")
    assert shipment is not None and not shipment.safe  # not listed as safe in the config
    assert call(tools, "add", a=2, b=3) == ("ok", "5")


def test_bad_arguments_are_refused_before_the_server_is_asked(tools: ToolRegistry) -> None:
    add = tools.get("add")
    assert add is not None
    with pytest.raises(Exception, match="invalid arguments for add") as caught:
        add.check_arguments({"a": "two"})
    assert "expected" in str(caught.value)


def test_an_error_the_server_reports_is_an_error_result(tools: ToolRegistry) -> None:
    status, result = call(tools, "fail", reason="no")
    assert status == "error" and "refused: no" in result


def test_a_hung_call_times_out_and_the_server_goes_on(tmp_path: Path) -> None:
    group = servers(tmp_path, slow=stdio(timeout=1))
    registry, _ = loaded(group)
    started = time.monotonic()
    status, result = call(registry, "hang", seconds=30)
    assert status == "error" and "no answer within 1 s" in result
    assert time.monotonic() - started < 5
    assert call(registry, "add", a=1, b=1) == ("ok", "2")
    group.close()


def test_a_server_that_crashes_mid_call_is_an_error_then_starts_again(tmp_path: Path) -> None:
    group = servers(tmp_path, frail=stdio())
    registry, _ = loaded(group)
    status, result = call(registry, "crash")
    assert status == "error" and "closed the connection" in result and "\n" not in result
    assert "crashed" in group.servers[0].status
    assert call(registry, "add", a=5, b=5) == ("ok", "10")  # started again
    group.close()


def test_servers_that_fail_to_start_are_one_line_each_and_leave_the_rest(tmp_path: Path) -> None:
    group = servers(
        tmp_path,
        good=stdio(),
        dies=stdio("--die"),
        missing={"command": "no-such-command-qwenchat"},
        nobody={"url": "http://127.0.0.1:9/mcp", "timeout": 3},
        off=stdio(disabled=True),
    )
    registry, warnings = loaded(group)
    assert "add" in registry.names()
    assert len(warnings) == 3 and all("\n" not in w for w in warnings)
    dies, missing, nobody = warnings
    assert "'dies'" in dies and "closed the connection" in dies and "dies.log" in dies
    assert "'missing'" in missing and "no such command" in missing
    assert "'nobody'" in nobody and "left out" in nobody
    assert group.disabled == ["off"]
    group.close()


def test_a_server_that_writes_garbage_on_stdout_still_works_and_prints_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    group = servers(tmp_path, noisy=stdio("--garbage"))
    registry, warnings = loaded(group)
    assert warnings == [] and call(registry, "add", a=1, b=2) == ("ok", "3")
    group.close()
    out, err = capfd.readouterr()
    assert "not JSON-RPC" not in out + err and "\x1b" not in out + err


@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    proc.wait()


def test_a_streamable_http_servers_tools_work_and_its_death_is_one_line(
    tmp_path: Path, http_server: str
) -> None:
    group = servers(tmp_path, web={"url": http_server, "timeout": 5})
    registry, warnings = loaded(group)
    assert warnings == [] and registry.get("add") is not None
    assert registry.get("add").source == "mcp:web"  # type: ignore[union-attr]
    assert call(registry, "add", a=20, b=22) == ("ok", "42")
    status, result = call(registry, "crash")
    assert status == "error" and "\n" not in result
    group.close()


def test_the_config_file_is_validated_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"x": {"args": ["a"]}}}))
    with pytest.raises(InputError, match='either "command"') as caught:
        load_config(path)
    assert "\n" not in str(caught.value)
    path.write_text("{not json")
    with pytest.raises(InputError, match="is not JSON"):
        load_config(path)
    with pytest.raises(InputError, match="no MCP config"):
        load_config(tmp_path / "absent.json")


def test_tools_list_shows_a_servers_tools_and_tools_run_calls_them(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"test": stdio(safe=["add"])}}))
    env = {"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_CACHE_DIR": str(tmp_path)}
    listed = run_cli("tools", "list", "--mcp-config", str(config), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "shipment_status" in listed.stdout and "mcp:test" in listed.stdout
    ran = run_cli("tools", "run", "add", '{"a": 40, "b": 2}', "--mcp-config", str(config), env=env)
    assert ran.returncode == 0 and ran.stdout.strip() == "42", ran.stderr
    bad = run_cli("tools", "list", "--mcp-config", str(tmp_path / "nope.json"), env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no MCP config" in bad.stderr


# --- qwenchat mcp serve, through the SDK's own client ----------------------------------


def test_mcp_serve_runs_code_in_the_sandbox_for_an_sdk_client(tmp_path: Path) -> None:
    import asyncio

    from mcp import ClientSession, StdioServerParameters, stdio_client

    from tests.sandbox_layers import skip_unless_usable

    skip_unless_usable("bubblewrap")
    command = [sys.executable, "-c", "from qwenchat.cli import main; main()", "mcp", "serve"]
    params = StdioServerParameters(
        command=command[0],
        args=command[1:],
        env={"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_CACHE_DIR": str(tmp_path)},
    )

    async def session() -> tuple[list[str], list[tuple[bool, str]]]:
        with (tmp_path / "serve.log").open("w") as log:
            async with (
                stdio_client(params, errlog=log) as (read, write),
                ClientSession(read, write, read_timeout_seconds=60) as client,
            ):
                await client.initialize()
                names = [t.name for t in (await client.list_tools()).tools]
                results = []
                for code in ("x = 6 * 7", "print(x)", "open('/root/secret').read()", "1/0"):
                    done = await client.call_tool("python", {"code": code})
                    results.append((done.is_error, done.content[0].text))
                calc = await client.call_tool("calculator", {"expression": "2 ** 10"})
                results.append((calc.is_error, calc.content[0].text))
                return names, results

    names, results = asyncio.run(session())
    assert {"python", "calculator"} <= set(names)
    assigned, printed, secret, raised, calc = results
    assert not assigned[0] and printed == (False, "42")  # the interpreter stays warm
    assert secret[0] and ("FileNotFoundError" in secret[1] or "PermissionError" in secret[1])
    assert raised[0] and "ZeroDivisionError" in raised[1]
    assert calc == (False, "1024")


def test_mcp_list_shows_each_server_its_status_and_tools(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    entries = {
        "test": stdio(),
        "gone": {"command": "no-such-command-qwenchat"},
        "off": stdio(disabled=True),
    }
    config.write_text(json.dumps({"mcpServers": entries}))
    env = {"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_CACHE_DIR": str(tmp_path)}
    listed = run_cli("mcp", "list", "--mcp-config", str(config), env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("test" in line and "running" in line and "add" in line for line in lines)
    assert any("gone" in line and "failed" in line for line in lines)
    assert any("off" in line and "disabled" in line for line in lines)
