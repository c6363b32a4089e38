"""The command line without a model: help, prompt building, usage errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenchat.cli.ask import build_prompt


def run_cli(
    *args: str, stdin: str | None = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def isolated(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def test_build_prompt_puts_stdin_first_in_a_fence() -> None:
    assert build_prompt("summarise", "") == "summarise"
    assert build_prompt("", "just input\n") == "just input\n"
    assert build_prompt("summarise", "a\nb\n") == "```\na\nb\n```\n\nsummarise"


def test_build_prompt_fence_outgrows_backticks_in_the_input() -> None:
    joined = build_prompt("explain", "```py\nx = 1\n```\n")
    assert joined.startswith("````\n```py") and joined.endswith("```\n````\n\nexplain")


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("ask", "config", "models"):
        assert command in result.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; sys.argv=['qwenchat','--help']\n"
        "from qwenchat.cli import main\n"
        "try: main()\n"
        "except SystemExit: pass\n"
    )
    code += (
        "print(sorted(m for m in ('llama_cpp','textual','pydantic','numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip().endswith("[]")


def test_empty_prompt_is_a_usage_error(isolated: dict[str, str]) -> None:
    result = run_cli("ask", stdin="  \n", env=isolated)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == 'qwenchat: empty prompt: give one as an argument or on stdin, e.g. qwenchat ask "hello"'
    )


def test_unknown_option_exits_2(isolated: dict[str, str]) -> None:
    result = run_cli("ask", "--bogus", "x", env=isolated)
    assert result.returncode == 2 and "No such option" in result.stderr


def test_bad_gpu_layers_flag(isolated: dict[str, str]) -> None:
    result = run_cli("ask", "--gpu-layers", "many", "hi", env=isolated)
    assert result.returncode == 2
    assert "--gpu-layers: expected auto, all or a number of layers" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_one_line(isolated: dict[str, str]) -> None:
    cfg = Path(isolated["QWENCHAT_CONFIG_DIR"])
    cfg.mkdir()
    (cfg / "config.toml").write_text("[sampling]\ntemperature = 'hot'\n")
    result = run_cli("ask", "hi", env=isolated)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "key 'sampling.temperature'" in lines[0]


def test_missing_model_file(isolated: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("ask", "-m", str(tmp_path / "absent.gguf"), "hi", env=isolated)
    assert result.returncode == 2
    assert "absent.gguf" in result.stderr and "Traceback" not in result.stderr


def test_not_a_gguf(isolated: dict[str, str], tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model")
    result = run_cli("ask", "-m", str(fake), "hi", env=isolated)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"qwenchat: {fake} is not a GGUF file (bad magic); download a .gguf model"
    )


def test_config_path_and_show(isolated: dict[str, str]) -> None:
    path = run_cli("config", "path", env=isolated)
    assert path.returncode == 0
    assert path.stdout.strip() == str(Path(isolated["QWENCHAT_CONFIG_DIR"]) / "config.toml")
    show = run_cli("config", "show", env=isolated)
    assert show.returncode == 0 and '"temperature": 0.7' in show.stdout


def test_models_list_reads_gguf_headers(isolated: dict[str, str]) -> None:
    from tests.gguf_builder import gguf_bytes, model_kv

    models = Path(isolated["QWENCHAT_DATA_DIR"]) / "models"
    models.mkdir(parents=True)
    (models / "tiny-qwen.gguf").write_bytes(gguf_bytes(model_kv()))
    (models / "broken.gguf").write_bytes(b"GGUF")
    result = run_cli("models", "list", env=isolated)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["tiny-qwen"][-3:] == ["Q4_K_M", "qwen2", "32768"]
    assert rows["broken"][-1] == "unreadable"
    assert result.stderr.startswith(f"qwenchat: warning: {models / 'broken.gguf'} is truncated")


def test_empty_models_dir_says_how_to_get_a_model(isolated: dict[str, str]) -> None:
    result = run_cli("models", "list", env=isolated)
    assert result.returncode == 0
    assert "pip install 'qwenchat[test-model]'" in result.stderr


@pytest.mark.parametrize(
    ("section", "flags", "code", "words"),
    [
        ('layer = "none"', ["--tir"], 1, "cannot run the model's code: no sandbox works here"),
        ('layer = "none"', ["--tool", "python"], 1, "install bubblewrap"),
        ('layer = "rlimits"', ["--tir"], 2, "WEAKER isolation"),
    ],
)
def test_code_runs_check_the_sandbox_before_the_model(
    isolated: dict[str, str], tmp_path: Path, section: str, flags: list[str], code: int, words: str
) -> None:
    from tests.sandbox_layers import skip_unless_usable

    skip_unless_usable("rlimits")
    cfg = Path(isolated["QWENCHAT_CONFIG_DIR"])
    cfg.mkdir()
    (cfg / "config.toml").write_text(f"[sandbox]\n{section}\n")
    missing = str(tmp_path / "absent.gguf")
    result = run_cli("ask", *flags, "-m", missing, "What is 2+2?", env=isolated)
    # No sandbox: the error comes first, before the (missing) model is even looked at;
    # a weaker one: a warning, then the model error (exit 2).
    assert result.returncode == code and words in result.stderr
    assert ("not found" in result.stderr) == (code == 2)
    assert "Traceback" not in result.stderr


def test_retry_needs_a_session_and_no_prompt(isolated: dict[str, str]) -> None:
    for args in (["--retry"], ["--retry", "--session", "s", "new prompt"]):
        result = run_cli("ask", *args, env=isolated)
        assert result.returncode == 2 and "--retry needs --session NAME" in result.stderr


@pytest.mark.parametrize("args", [(), ("chat", "--session", "work")])
def test_the_tui_outside_a_terminal_is_one_line_pointing_at_ask(
    args: tuple[str, ...], isolated: dict[str, str]
) -> None:
    result = run_cli(*args, env=isolated)  # stdin and stdout are pipes here
    assert result.returncode == 2
    assert result.stdout == ""  # no escape codes drawn into the pipe
    assert result.stderr.strip().splitlines() == [
        "qwenchat: the TUI needs a terminal on stdin and stdout; in a pipeline or script,"
        " use `qwenchat ask`"
    ]
    assert not (Path(isolated["QWENCHAT_DATA_DIR"]) / "sessions.db").exists()  # nothing opened


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "0", "hi"], "qwenchat: --samples must be from 1 to 16, not 0"),
        (["--samples", "17", "hi"], "qwenchat: --samples must be from 1 to 16, not 17"),
        (
            ["--samples", "2", "--schema", "name", "hi"],
            "qwenchat: --schema cannot be used with --tools, --tool, --tir, --samples or --retry",
        ),
    ],
)
def test_bad_samples_are_one_line(isolated: dict[str, str], args: list[str], message: str) -> None:
    result = run_cli("ask", *args, env=isolated)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_version_prints_the_installed_version(isolated: dict[str, str]) -> None:
    from importlib.metadata import version

    result = run_cli("--version", env=isolated)
    assert result.returncode == 0 and result.stdout == f"qwenchat {version('qwenchat')}\n"


def test_the_shell_completes_model_session_and_tool_names(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    from qwenchat.store import SessionStore

    models = tmp_path / "models"
    models.mkdir()
    (models / "qwen-tiny.gguf").write_bytes(b"GGUF")
    (isolated_cfg := Path(isolated["QWENCHAT_CONFIG_DIR"])).mkdir(parents=True, exist_ok=True)
    (isolated_cfg / "config.toml").write_text(f'models_dir = "{models}"\n')
    with SessionStore(Path(isolated["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        store.create_session(name="work-notes")

    def complete(words: str) -> list[str]:
        env = {**isolated, "_QWENCHAT_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        done = subprocess.run(
            [str(Path(sys.executable).with_name("qwenchat"))],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout.split()

    assert complete("qwenchat ask --model qwen") == ["qwen-tiny"]
    assert complete("qwenchat chat --session work") == ["work-notes"]
    assert "calculator" in complete("qwenchat ask --tool calc")
