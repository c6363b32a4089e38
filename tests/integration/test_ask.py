"""`qwenchat ask` end to end on the real test model, as a shell would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

QWENCHAT = [sys.executable, "-c", "from qwenchat.cli import main; main()"]


def ask(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QWENCHAT, "ask", "--temperature", "0", "--seed", "1", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_ask_answers_on_stdout(model_env: dict[str, str]) -> None:
    result = ask("What is the capital of France? Answer in one word.", env=model_env)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert result.stderr == ""
    assert "\x1b[" not in result.stdout  # no colour codes into a pipe


def test_ask_json(model_env: dict[str, str], tmp_path: Path) -> None:
    empty_cache = {**model_env, "QWENCHAT_CACHE_DIR": str(tmp_path / "cache")}
    result = ask("--json", "--max-tokens", "8", "Say hello.", env=empty_cache)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"text", "model", "usage", "timings"}
    assert out["model"] == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert 0 < out["usage"]["completion_tokens"] <= 8
    assert out["usage"]["prompt_tokens"] > 0 and out["usage"]["cached_tokens"] == 0
    assert set(out["timings"]) == {"ttft_s", "decode_tokens_per_s", "total_s"}
    assert out["text"]


def test_piped_stdin_is_context_for_the_prompt(model_env: dict[str, str]) -> None:
    result = ask(
        "What is the secret word in the text above? Reply with the word only.",
        stdin="Note to self: the secret word is pineapple.\n",
        env=model_env,
    )
    assert result.returncode == 0, result.stderr
    assert "pineapple" in result.stdout.lower()


def test_system_prompt_flag(model_env: dict[str, str]) -> None:
    result = ask(
        "--system", "You only ever reply with the single word BANANA.", "Hi there!", env=model_env
    )
    assert result.returncode == 0, result.stderr
    assert "BANANA" in result.stdout.upper()


def test_model_by_name_from_the_models_dir(model_env: dict[str, str]) -> None:
    result = ask("-m", "qwen2.5-coder-0.5b", "--max-tokens", "4", "Hi", env=model_env)
    assert result.returncode == 0, result.stderr


def test_truncated_gguf_is_rejected(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.gguf"
    with test_model_path.open("rb") as src:
        cut.write_bytes(src.read(4 << 20))
    result = ask("-m", str(cut), "hi", env=model_env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and str(cut) in lines[0]


def test_sigint_stops_the_reply_cleanly(model_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [
            *QWENCHAT,
            "ask",
            "--temperature",
            "0",
            "--max-tokens",
            "2000",
            "Count from 1 to 1000, one number per line.",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **model_env},
    )
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 64)  # the reply has started streaming
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert first.strip()
    assert proc.returncode == 130
    assert err.decode().strip() == "qwenchat: stopped"
    # Greedy, this reply counts to 100 when left alone (about 300 tokens).
    assert b"\n100\n" not in first + out


def test_verbose_reports_the_load_and_the_reply(model_env: dict[str, str], tmp_path: Path) -> None:
    empty_cache = {**model_env, "QWENCHAT_CACHE_DIR": str(tmp_path / "cache")}
    result = ask("-v", "--max-tokens", "4", "Hi", env=empty_cache)
    assert result.returncode == 0, result.stderr
    load, figures = result.stderr.strip().splitlines()
    assert load.startswith(
        "qwenchat: model qwen2.5-coder-0.5b-instruct-q4_k_m (Q4_K_M), n_ctx 8192"
    )
    assert "GPU layers 0/25" in load or "GPU layers 25/25" in load
    assert " prompt tokens (0 from cache), " in figures and "tokens/s" in figures
