"""`qwenchat tools list|show|run`: how tool authors try a tool without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = str(REPO / "tools")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def test_list_shows_builtin_and_example_tools(env: dict[str, str]) -> None:
    result = run_cli("tools", "list", "--tools-dir", EXAMPLES, env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert {
        "calculator",
        "current_datetime",
        "convert_units",
        "read_file",
        "list_directory",
    } <= set(rows)
    assert " yes " in rows["calculator"] and "builtin" in rows["calculator"]


def test_user_tools_dir_is_loaded_and_a_broken_file_is_reported(env: dict[str, str]) -> None:
    tools = Path(env["QWENCHAT_CONFIG_DIR"]) / "tools"
    tools.mkdir(parents=True)
    (tools / "good.py").write_text(
        "def shout(text: str) -> str:\n"
        '    """Upper-case a text.\n'
        "\n"
        "    Args:\n"
        "        text: what to shout\n"
        '    """\n'
        "    return text.upper()\n"
    )
    (tools / "broken.py").write_text("def oops(:\n    pass\n")
    result = run_cli("tools", "list", env=env)
    assert result.returncode == 0
    assert "shout" in result.stdout
    assert result.stderr.startswith(f"qwenchat: warning: {tools / 'broken.py'}:1: SyntaxError")
    ran = run_cli("tools", "run", "shout", '{"text": "hi"}', "--yes", env=env)
    assert (ran.returncode, ran.stdout) == (0, "HI\n")


def test_show_prints_the_schema(env: dict[str, str]) -> None:
    result = run_cli("tools", "show", "convert_units", "--tools-dir", EXAMPLES, env=env)
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["type"] == "function" and spec["function"]["name"] == "convert_units"
    assert spec["function"]["parameters"]["required"] == ["value", "from_unit", "to_unit"]


def test_run_a_safe_tool(env: dict[str, str]) -> None:
    result = run_cli(
        "tools", "run", "calculator", '{"expression": "123456789 * 987654321"}', env=env
    )
    assert (result.returncode, result.stdout) == (0, "121932631112635269\n")


def test_unknown_tool(env: dict[str, str]) -> None:
    result = run_cli("tools", "show", "nope", env=env)
    assert result.returncode == 2 and "nope" in result.stderr and "calculator" in result.stderr


def test_bad_json_arguments(env: dict[str, str]) -> None:
    result = run_cli("tools", "run", "calculator", "{expression: 1", env=env)
    assert result.returncode == 2 and "arguments are not valid JSON" in result.stderr


def test_invalid_arguments(env: dict[str, str]) -> None:
    result = run_cli("tools", "run", "calculator", '{"expr": "1"}', env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("qwenchat: invalid arguments for calculator")


def test_unsafe_tool_needs_yes(env: dict[str, str], tmp_path: Path) -> None:
    tools = tmp_path / "mine"
    tools.mkdir()
    (tools / "rm.py").write_text(
        "def remove(name: str) -> str:\n"
        '    """Pretend to delete a file.\n'
        "\n"
        "    Args:\n"
        "        name: the file\n"
        '    """\n'
        '    return f"removed {name}"\n'
    )
    refused = run_cli("tools", "run", "remove", '{"name": "x"}', "--tools-dir", str(tools), env=env)
    assert refused.returncode == 2 and "approve it with --yes" in refused.stderr
    approved = run_cli(
        "tools", "run", "remove", '{"name": "x"}', "--tools-dir", str(tools), "--yes", env=env
    )
    assert (approved.returncode, approved.stdout) == (0, "removed x\n")


def test_a_tool_that_raises_exits_1(env: dict[str, str]) -> None:
    result = run_cli("tools", "run", "calculator", '{"expression": "1 / 0"}', env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("qwenchat: Error: ") and "Traceback" not in result.stderr


def test_python_is_listed_and_runs_in_a_sandbox(env: dict[str, str]) -> None:
    from tests.sandbox_layers import skip_unless_usable

    skip_unless_usable("bubblewrap")
    listed = run_cli("tools", "list", env=env)
    row = next(line for line in listed.stdout.splitlines() if line.split()[:1] == ["python"])
    assert row.split()[1] == "yes"  # safe: the sandbox is at full strength
    result = run_cli(
        "tools", "run", "python", '{"code": "import os\\nprint(os.getuid())"}', env=env
    )
    assert (result.returncode, result.stdout.strip()) == (0, "65534")


def test_python_needs_yes_on_the_weaker_layer(env: dict[str, str]) -> None:
    from tests.sandbox_layers import skip_unless_usable

    skip_unless_usable("rlimits")
    config = Path(env["QWENCHAT_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text('[sandbox]\nlayer = "rlimits"\n')
    refused = run_cli("tools", "run", "python", '{"code": "print(1)"}', env=env)
    assert refused.returncode == 2 and "approve it with --yes" in refused.stderr
    approved = run_cli("tools", "run", "python", '{"code": "print(1)"}', "--yes", env=env)
    assert (approved.returncode, approved.stdout.strip()) == (0, "1")
