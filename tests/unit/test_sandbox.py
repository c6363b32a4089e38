"""The sandboxed interpreter: notebook semantics, timeouts, crashes, output limits, layers.

Escape attempts are in ``tests/security/test_escapes.py``. Calls use 1-second timeouts.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

import pytest

from qwenchat.errors import QwenchatError
from qwenchat.sandbox import ExecResult, Sandbox, SandboxError, SandboxLayer, detect_layer, jail
from qwenchat.sandbox.limits import Limits
from tests.sandbox_layers import skip_unless_usable

LAYERS = ["bubblewrap", "rlimits"]


@pytest.fixture(params=LAYERS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    skip_unless_usable(request.param)
    with Sandbox(request.param, timeout=1.0) as sb:
        yield sb


def _gone(pid: int, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- notebook semantics ----------------------------------------------------------------


def test_state_persists_across_calls(sandbox: Sandbox) -> None:
    sandbox.run("import math\nx = 20")
    sandbox.run("def f(n):\n    return n + 1")
    assert sandbox.run("print(f(x) + math.floor(1.5))").stdout == "22\n"


def test_last_expression_value_is_shown(sandbox: Sandbox) -> None:
    assert sandbox.run("2+3").stdout == "5\n"
    assert sandbox.run("print('a')\n'b'").stdout == "a\n'b'\n"
    assert sandbox.run("y = 3").stdout == ""
    assert sandbox.run("None").stdout == ""
    assert sandbox.run("y * 2  # a comment").stdout == "6\n"


def test_result_is_a_plain_result(sandbox: Sandbox) -> None:
    result = sandbox.run("print('hi')")
    assert isinstance(result, ExecResult)
    assert (result.stdout, result.error, result.timed_out, result.restarted) == (
        "hi\n",
        None,
        False,
        False,
    )
    assert 0 <= result.duration_s < 1


def test_error_is_the_last_traceback_line(sandbox: Sandbox) -> None:
    assert sandbox.run("x").error == "NameError: name 'x' is not defined"
    deep = sandbox.run("def f():\n    return 1 / 0\n\nf()")
    assert deep.error == "ZeroDivisionError: division by zero"
    syntax = sandbox.run("print(")
    assert syntax.error is not None and syntax.error.startswith("SyntaxError: ")
    assert "\n" not in syntax.error


def test_a_misspelt_name_gets_a_hint(sandbox: Sandbox) -> None:
    sandbox.run("charleston_sheep = 80")
    assert sandbox.run("2 * Charleston_sheep").error == (
        "NameError: name 'Charleston_sheep' is not defined. Did you mean: 'charleston_sheep'?"
    )
    assert sandbox.run("prnt(1)").error.endswith("Did you mean: 'print'?")  # type: ignore[union-attr]


def test_print_and_error_come_together(sandbox: Sandbox) -> None:
    result = sandbox.run("print('before')\nraise ValueError('bad value')")
    assert result.stdout == "before\n"
    assert result.error == "ValueError: bad value"


def test_stderr_and_program_output_are_captured_in_order(sandbox: Sandbox) -> None:
    code = "import os, sys\nprint('a')\nos.system('echo b')\nsys.stderr.write('c\\n')\nprint('d')"
    assert sandbox.run(code).stdout == "a\nb\nc\nd\n"


def test_clean_sys_exit_is_not_an_error(sandbox: Sandbox) -> None:
    assert sandbox.run("import sys\nprint(1)\nsys.exit(0)").error is None
    assert sandbox.run("import sys\nsys.exit(3)").error == "SystemExit: 3"
    assert sandbox.run("print(2)").stdout == "2\n"


def test_input_gets_end_of_file(sandbox: Sandbox) -> None:
    assert sandbox.run("input()").error == "EOFError: EOF when reading a line"


def test_numpy_and_sympy_import(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "import numpy, sympy\nprint(numpy.arange(3).sum(), sympy.sqrt(8))", timeout=20
    )
    assert (result.stdout, result.error) == ("3 2*sqrt(2)\n", None)


# --- timeouts and crashes --------------------------------------------------------------


def test_soft_timeout_keeps_state(sandbox: Sandbox) -> None:
    sandbox.run("x = 1")
    start = time.monotonic()
    result = sandbox.run("while True: pass")
    assert time.monotonic() - start < 2
    assert result.timed_out and not result.restarted
    assert result.error == "TimeoutError: execution timed out after 1 s; state is kept"
    assert sandbox.run("print(x)").stdout == "1\n"


def test_output_before_a_timeout_is_kept(sandbox: Sandbox) -> None:
    result = sandbox.run("print('started', flush=True)\nimport time\ntime.sleep(5)")
    assert result.timed_out and result.stdout == "started\n"


def test_code_ignoring_sigint_is_killed_and_state_lost(sandbox: Sandbox) -> None:
    sandbox.run("x = 1")
    first_pid = sandbox.interpreter_pid
    ignore = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
    result = sandbox.run(ignore)
    assert result.timed_out and result.restarted
    assert result.error == (
        "TimeoutError: execution timed out after 1 s; "
        "the interpreter was restarted and its state was lost"
    )
    assert first_pid is not None and _gone(first_pid)
    assert sandbox.run("x").error == "NameError: name 'x' is not defined"
    assert sandbox.run("print(1)").stdout == "1\n"


def test_crash_restarts_the_interpreter(sandbox: Sandbox) -> None:
    sandbox.run("x = 1")
    result = sandbox.run("import ctypes\nctypes.string_at(0)")
    assert result.restarted and not result.timed_out
    assert result.error == (
        "the interpreter crashed (signal 11, SIGSEGV); it was restarted and its state was lost"
    )
    assert sandbox.run("x").error == "NameError: name 'x' is not defined"


def test_interpreter_exit_restarts_the_interpreter(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nos._exit(7)")
    assert result.restarted
    assert (
        result.error == "the interpreter exited (code 7); it was restarted and its state was lost"
    )
    assert sandbox.run("print(1)").stdout == "1\n"


# --- output limits ---------------------------------------------------------------------


def test_long_output_keeps_head_and_tail(sandbox: Sandbox) -> None:
    lines = 20000
    stdout = sandbox.run(f"for i in range({lines}): print(i)").stdout
    total = sum(len(f"{i}\n") for i in range(lines))
    match = re.search(r"\n\.\.\. \[(\d+) characters truncated\] \.\.\.\n", stdout)
    assert match is not None
    head, tail = stdout[: match.start()], stdout[match.end() :]
    assert head.startswith("0\n1\n2\n") and tail.endswith("19998\n19999\n")
    assert len(head) == len(tail) == sandbox.limits.max_output_chars // 2
    assert len(head) + int(match.group(1)) + len(tail) == total


def test_output_limit_is_configurable() -> None:
    skip_unless_usable("rlimits")
    with Sandbox("rlimits", limits=Limits(max_output_chars=100)) as sb:
        stdout = sb.run("print('x' * 1000)").stdout
    assert stdout == "x" * 50 + "\n... [901 characters truncated] ...\n" + "x" * 49 + "\n"


def test_short_output_is_untouched(sandbox: Sandbox) -> None:
    text = "y" * (sandbox.limits.max_output_chars - 1)
    assert sandbox.run(f"print('{text}')").stdout == text + "\n"


# --- lifecycle -------------------------------------------------------------------------


def test_interpreter_starts_lazily(sandbox: Sandbox) -> None:
    assert sandbox.pid is None
    sandbox.run("pass")
    assert sandbox.pid is not None


def test_close_leaves_no_process(sandbox: Sandbox) -> None:
    sandbox.run("import subprocess\np = subprocess.Popen(['sleep', '30'])")
    pid = sandbox.pid
    assert pid is not None
    sandbox.close()
    sandbox.close()
    assert _gone(pid)
    with pytest.raises(SandboxError, match="closed"):
        sandbox.run("print(1)")


def test_garbage_collection_kills_the_interpreter() -> None:
    skip_unless_usable("rlimits")
    sb = Sandbox("rlimits")
    sb.run("pass")
    pid = sb.pid
    assert pid is not None
    del sb
    assert _gone(pid)


def test_started_from_a_short_lived_thread(sandbox: Sandbox) -> None:
    """bwrap's --die-with-parent follows the thread that started it, not the process."""
    thread = threading.Thread(target=sandbox.run, args=("x = 41",))
    thread.start()
    thread.join()
    time.sleep(0.2)
    assert sandbox.run("x + 1").stdout == "42\n"


def test_close_during_a_call_ends_it() -> None:
    skip_unless_usable("rlimits")
    sb = Sandbox("rlimits", timeout=30)
    sb.run("pass")
    threading.Timer(0.3, sb.close).start()
    with pytest.raises(SandboxError, match="closed"):
        sb.run("while True: pass")


# --- layers ----------------------------------------------------------------------------


def test_detect_layer_is_cached_and_described() -> None:
    layer = detect_layer()
    assert detect_layer() is layer
    assert isinstance(layer, SandboxLayer)
    assert layer.reason and "\n" not in layer.reason
    assert (layer.name, layer.strength) in {
        ("bubblewrap", "full"),
        ("rlimits", "weaker"),
        ("none", "none"),
    }


def test_sandbox_reports_its_layer(sandbox: Sandbox) -> None:
    assert sandbox.layer.name in LAYERS


def test_none_layer_is_refused_unless_allowed() -> None:
    with Sandbox("none") as sb, pytest.raises(SandboxError) as refused:
        sb.run("print(1)")
    message = str(refused.value)
    assert isinstance(refused.value, QwenchatError) and "\n" not in message
    assert "bubblewrap" in message and "sandbox.allow_unsandboxed = true" in message
    with Sandbox("none", allow_unsandboxed=True) as sb:
        assert sb.run("print(1)").stdout == "1\n"


def test_bubblewrap_asked_for_but_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    fallback = SandboxLayer(name="rlimits", strength="weaker", reason="bwrap not found")
    monkeypatch.setattr(jail, "detect_layer", lambda: fallback)
    with pytest.raises(SandboxError, match="bubblewrap sandbox does not work here: bwrap not"):
        _ = Sandbox("bubblewrap").layer


def test_rlimits_layer_limits_memory() -> None:
    skip_unless_usable("rlimits")
    with Sandbox("rlimits", limits=Limits(memory_mb=256)) as sb:
        assert sb.run("x = bytearray(300 * 2**20)").error == "MemoryError"
        assert sb.run("x = bytearray(10 * 2**20); print(len(x))").stdout == "10485760\n"


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        Sandbox(timeout=0)
    with pytest.raises(ValueError):
        Sandbox(limits=Limits(memory_mb=1))
