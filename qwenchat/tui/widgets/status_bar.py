"""One line at the bottom: the model, where it runs, the context used, the last reply's speed,
the sandbox, the persona, and which modes are on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual.widgets import Static

from qwenchat.safetext import shown

_BAR_CELLS = 8


@dataclass(frozen=True)
class StatusInfo:
    model: str = "no model"
    quant: str = ""
    offload: str = ""  # "GPU 25/25" or "CPU"
    state: str = ""  # "loading model…", "writing…", or nothing when idle
    context_used: int = 0
    n_ctx: int = 0
    tokens_per_s: float | None = None
    ttft_s: float | None = None
    sandbox: str = ""
    persona: str = ""
    tools: bool = False
    tir: bool = False


def context_bar(used: int, total: int) -> str:
    """``▰▰▰▱▱▱▱▱▱▱ 1,234/8,192``: how full the context window is."""
    if total <= 0:
        return ""
    filled = min(_BAR_CELLS, round(_BAR_CELLS * used / total))
    return f"{'▰' * filled}{'▱' * (_BAR_CELLS - filled)} {used:,}/{total:,}"


class StatusBar(Static):
    """Shows a :class:`StatusInfo`; the app changes fields with :meth:`set`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info = StatusInfo()

    def on_mount(self) -> None:
        self._show()

    def set(self, **changes: Any) -> None:
        # Model and persona names come from files and servers: inert in the terminal.
        plain = {k: shown(v) if isinstance(v, str) else v for k, v in changes.items()}
        self.info = replace(self.info, **plain)
        self._show()

    def _show(self) -> None:
        info = self.info
        # Most important first: a narrow terminal cuts the end of the line.
        parts: list[tuple[str, str]] = []
        if info.state:
            parts.append((info.state, "italic"))
        model = info.model
        if info.quant and model.lower().endswith(f"-{info.quant.lower()}"):
            model = model[: -len(info.quant) - 1]  # the file name repeats the quantisation
        parts.append((f"{model} {info.quant}".strip(), "bold"))
        if info.offload:
            parts.append((info.offload, ""))
        modes = [name for name, on in (("tools", info.tools), ("TIR", info.tir)) if on]
        if modes:
            parts.append(("+".join(modes), "bold"))
        if info.n_ctx:
            parts.append((f"ctx {context_bar(info.context_used, info.n_ctx)}", ""))
        if info.tokens_per_s is not None:
            parts.append((f"{info.tokens_per_s:.1f} tok/s", ""))
        if info.ttft_s is not None:
            parts.append((f"TTFT {info.ttft_s:.2f} s", ""))
        if info.persona:
            parts.append((f"persona {info.persona}", ""))
        if info.sandbox:
            parts.append((f"sandbox {info.sandbox}", ""))
        text = Text()
        for i, (part, style) in enumerate(parts):
            if i:
                text.append(" │ ", style="dim")
            text.append(part, style=style)
        self.update(text)
