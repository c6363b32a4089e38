"""Start-up of the TUI: from launching `qwenchat` to its first frame, against a bare
Textual app, side by side.

Each run starts a fresh process in a new tmux pane (a real terminal) and polls the
pane every 10 ms until the first frame is on screen, interleaved (the order rotates):

  a  qwenchat   `qwenchat` with the test model configured (QWENCHAT_MODEL), until its
                input box is drawn; the time until the model has loaded too (the
                status bar shows the context) is reported alongside
  b  textual    a Textual app showing one Static, until it is drawn: the floor any
                Textual app pays (interpreter, imports, terminal set-up)

Target: a <= 1 s. The polling adds up to 10 ms to both sides.

    .venv/bin/python bench/tui_startup.py [--model PATH|test|eval] [--repeats 9] [--json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _common import (
    BENCH_DIR,
    QWENCHAT,
    Report,
    clean_env,
    interleave,
    main_guard,
    median,
    model_path,
    parse,
    parser,
)

sys.path.insert(0, str(BENCH_DIR.parent))
from tests.terminal import Tmux

TARGET = "<= 1"
READY = "Message (Enter sends"
BARE_APP = """
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("bare textual app drawn")

Bare().run()
"""


def main() -> None:
    cli = parser(__doc__, repeats=9, warmup=1)
    args = parse(cli)
    path = model_path(args.model)
    scratch = Path(tempfile.mkdtemp(prefix="qwenchat-tui-startup-"))
    env = {**clean_env(), "QWENCHAT_MODEL": str(path), "QWENCHAT_DATA_DIR": str(scratch)}

    def first_frame(command: list[str], ready: str, loaded: str | None = None) -> dict:
        with Tmux(command, env=env) as term:
            term.wait_for(ready, timeout=30)
            frame = time.perf_counter() - term.started
            result = {"frame": frame}
            if loaded is not None:
                term.wait_for(loaded, timeout=120)
                result["loaded"] = time.perf_counter() - term.started
            return result

    runs = interleave(
        {
            "qwenchat": lambda: first_frame([QWENCHAT], READY, loaded="ctx "),
            "textual": lambda: first_frame([sys.executable, "-c", BARE_APP], "bare textual app"),
        },
        args.repeats,
        args.warmup,
    )
    frames = {name: [r["frame"] for r in rs] for name, rs in runs.items()}
    med = {name: median(v) for name, v in frames.items()}
    loaded = median([r["loaded"] for r in runs["qwenchat"]])
    report = Report(
        "tui_startup",
        {"model": path.name, "repeats": f"{args.repeats} interleaved after {args.warmup} warm-up"},
    )
    report.table(
        ["contender", "median first frame s", "min", "max"],
        [
            [name, f"{med[name]:.3f}", f"{min(v):.3f}", f"{max(v):.3f}"]
            for name, v in frames.items()
        ],
    )
    report.note(f"qwenchat: the model loaded (status bar shows the context) after {loaded:.3f} s")
    report.ratio("a  qwenchat first frame, s", med["qwenchat"], TARGET)
    report.ratio("a/b  qwenchat / bare Textual app", med["qwenchat"] / med["textual"])
    report.emit(args.json)


if __name__ == "__main__":
    main_guard(main)
