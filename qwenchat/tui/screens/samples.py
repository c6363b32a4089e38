"""/samples: the sampled solutions of the last voted reply, each with its answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown

from qwenchat.chat import Reply
from qwenchat.safetext import shown


def sample_title(number: int, answer: str | None, won: bool) -> str:
    """A sample's heading: its number, its answer, and whether it is the reply."""
    said = f"answer {shown(answer)}" if answer is not None else "no answer"
    return f"Sample {number} · {said}" + (" · the reply" if won else "")


class SamplesScreen(ModalScreen[None]):
    """Every sample of ``reply`` (a voted one), in order; the one shown as the reply
    is marked."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply

    def compose(self) -> ComposeResult:
        reply = self.reply
        agree = f"{reply.votes}/{reply.samples} samples agree"
        with Vertical(id="dialog"):
            yield Label(f"{agree}  [dim](Esc closes)[/]", id="title", markup=True)
            with VerticalScroll():
                won = False
                for number, sample in enumerate(reply.sample_replies, 1):
                    this = not won and sample.text == reply.text
                    won = won or this
                    title = sample_title(number, sample.answer, this)
                    yield Label(title, classes="sample-title", markup=False)
                    # Model and sandbox text, as every reply is shown: control characters inert.
                    yield Markdown(shown(sample.text), classes="sample")
