"""Self-consistency voting: answer normalising, the tally, and voted turns over a
scripted engine (CoT and TIR), their isolation, seeds and cancel."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from qwenchat.agent import Notice, TextDelta, ToolCallFinished
from qwenchat.chat import Chat
from qwenchat.chatml import AssistantMessage, Message, UserMessage
from qwenchat.config import Sampling, SandboxSettings, Settings, TirSettings
from qwenchat.engine.base import Engine
from qwenchat.errors import InputError
from qwenchat.tir import TirTurn
from qwenchat.tools import tool, tool_from_function
from qwenchat.vote import SAMPLE_TEMPERATURE, VotingTurn, normalise, tally
from tests.fakes import ScriptedEngine
from tests.sandbox_layers import skip_unless_usable


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("1,000", "1000"),
        ("1000.0", "1000"),
        ("\\$1,000", "1000"),
        ("1000 dollars", "1000"),
        ("\\text{1000}", "1000"),
        ("1 000", "1000"),
        ("\\frac{1}{2}", "0.5"),
        ("\\dfrac{3}{4}", "0.75"),
        ("1/2", "0.5"),
        ("50\\%", "50"),
        ("x = 5", "5"),
        ("-3.50", "-3.5"),
        ("Paris", " paris "),
    ],
)
def test_answers_that_mean_the_same_normalise_the_same(one: str, other: str) -> None:
    assert normalise(one) == normalise(other)


@pytest.mark.parametrize(("one", "other"), [("1000", "100"), ("0.5", "5"), ("12", "1/2")])
def test_different_answers_stay_different(one: str, other: str) -> None:
    assert normalise(one) != normalise(other)


def test_the_most_common_answer_wins_and_answerless_samples_do_not_vote() -> None:
    vote = tally(["7", None, "5", "5.0", None, "7", "5"])
    assert (vote.answer, vote.votes, vote.samples, vote.winner) == ("5", 3, 7, 2)
    assert vote.agreement() == "3/7 samples agree"


def test_a_tie_goes_to_the_answer_reached_first() -> None:
    assert tally(["9", "4", "4", "9"]).answer == "9"
    assert tally([None, "4", "9"]).winner == 1


def test_no_answer_at_all() -> None:
    vote = tally([None, "  ", None])
    assert vote.answer is None and vote.votes == 0 and vote.winner is None
    assert vote.agreement() == "none of 3 samples gave an answer"


# --- voted turns ------------------------------------------------------------------


def test_a_cot_vote_answers_with_the_first_sample_of_the_majority() -> None:
    replies = ["So \\boxed{7}.", "It is \\boxed{5}.", "Hence \\boxed{5.0}."]
    engine = ScriptedEngine(replies)
    chat = Chat(settings=Settings(), engine=engine, samples=3, temperature=0.6, seed=40)
    stream = chat.stream("What is 2 + 3?")
    events = list(stream.events())
    reply = stream.reply
    assert reply is not None
    assert (reply.answer, reply.votes, reply.samples) == ("5", 2, 3)
    assert reply.text == "It is \\boxed{5}."
    assert [s.answer for s in reply.sample_replies] == ["7", "5", "5.0"]
    # The conversation holds the question and the winner only.
    assert [type(m) for m in chat.messages] == [UserMessage, AssistantMessage]
    assert chat.messages[-1].content == "It is \\boxed{5}."
    # Every sample saw the same prompt, with its own seed at the chat's temperature.
    assert len(set(engine.prompts)) == 1
    assert [(s.seed, s.temperature) for s in engine.samplings] == [(40, 0.6), (41, 0.6), (42, 0.6)]
    # Only the winner's text is streamed; each sample and the agreement are notices.
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply.text
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == ["sample 1/3: 7", "sample 2/3: 5", "sample 3/3: 5.0", "2/3 samples agree"]


def test_samples_at_temperature_zero_are_drawn_at_the_sampling_temperature() -> None:
    engine = ScriptedEngine(["\\boxed{1}", "\\boxed{1}"])
    chat = Chat(settings=Settings(), engine=engine, samples=2, temperature=0.0)
    stream = chat.stream("1?")
    notices = [e.text for e in stream.events() if isinstance(e, Notice)]
    assert {s.temperature for s in engine.samplings} == {SAMPLE_TEMPERATURE}
    assert notices[0] == f"samples are drawn at temperature {SAMPLE_TEMPERATURE}, not 0"
    assert len({s.seed for s in engine.samplings}) == 2


def test_no_sample_answers() -> None:
    chat = Chat(settings=Settings(), engine=ScriptedEngine(["I think", "Maybe"]), samples=2)
    reply = chat.send("?")
    assert reply.answer is None and reply.votes == 0 and reply.samples == 2
    assert reply.text == "I think"


def test_samples_come_from_the_config_in_tir_mode_only() -> None:
    settings = Settings(tir=TirSettings(samples=4))
    assert Chat(settings=settings, engine=ScriptedEngine([]), tir=True).samples == 4
    assert Chat(settings=settings, engine=ScriptedEngine([])).samples == 1


def test_samples_with_tools_or_a_schema_are_refused() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: what.
        """
        return text

    from qwenchat.tools import ToolRegistry

    tools = ToolRegistry([tool_from_function(echo)])
    chat = Chat(settings=Settings(), engine=ScriptedEngine([]), tools=tools, samples=2)
    with pytest.raises(InputError, match="not with tools"):
        chat.stream("hi")
    plain = Chat(settings=Settings(), engine=ScriptedEngine([]), samples=2)
    with pytest.raises(InputError, match="schema"):
        plain.stream("hi", schema=__import__("qwenchat.schema").schema.Schema.parse("name"))
    with pytest.raises(InputError, match="at least 1"):
        Chat(settings=Settings(), engine=ScriptedEngine([]), samples=0)


def tir_sample(ran: list[str], closed: list[int]):  # type: ignore[no-untyped-def]
    """A StartSample whose python tool records the code and whose 'sandbox' records
    that it was closed."""

    def start(
        engine: Engine, messages: list[Message], sampling: Sampling, stack: ExitStack
    ) -> TirTurn:
        number = len(closed) + len(ran) + 1
        stack.callback(closed.append, number)

        @tool(name="python", safe=True)
        def python(code: str) -> str:
            """Run.

            Args:
                code: code.
            """
            ran.append(code)
            return "42"

        return TirTurn(engine, messages, sampling, python=tool_from_function(python))

    return start


def test_each_tir_sample_runs_its_own_code_and_its_resources_close_with_the_vote() -> None:
    code = "```python\nprint(6 * 7)\n```\n```output\n"
    engine = ScriptedEngine([code, "\\boxed{42}", "\\boxed{41}", code, "\\boxed{42}"])
    ran: list[str] = []
    closed: list[int] = []
    messages: list[Message] = [UserMessage(content="6*7?")]
    vote = VotingTurn(engine, messages, Sampling(), 3, tir_sample(ran, closed))
    events = list(vote)
    assert vote.result is not None
    assert (vote.result.answer, vote.result.votes) == ("42", 2)
    assert len(ran) == 2 and len(closed) == 3  # every sample's resources closed
    assert vote.result.tool_calls and vote.result.tool_calls[0].result == "42"
    assert not any(isinstance(e, ToolCallFinished) for e in events)  # samples' calls stay inside
    assert isinstance(messages[-1], AssistantMessage) and "42\n```" in messages[-1].content


def test_cancel_stops_the_running_sample_and_draws_no_more() -> None:
    engine = ScriptedEngine(["\\boxed{1}", "x" * 2000 + "\\boxed{2}", "\\boxed{3}"], delay=0.002)
    chat = Chat(settings=Settings(), engine=engine, samples=3)
    stream = chat.stream("?")
    events = stream.events()
    for event in events:
        if isinstance(event, Notice) and event.text == "sample 1/3: 1":
            threading.Timer(0.05, stream.cancel).start()
            break
    list(events)
    reply = stream.reply
    assert reply is not None and reply.finish_reason == "cancelled"
    assert len(engine.prompts) == 2  # the third sample never started
    assert reply.samples == 1 and reply.answer == "1"  # the finished sample stands
    assert engine.replies == ["\\boxed{3}"]


def test_voted_tir_samples_each_get_a_fresh_sandbox() -> None:
    """Judged from the host: the second sample cannot see the first one's variable."""
    skip_unless_usable("bubblewrap")
    set_secret = "```python\nsecret = 6 * 7\nprint(secret)\n```\n```output\n"
    read_secret = "```python\nprint(secret)\n```\n```output\n"
    engine = ScriptedEngine([set_secret, "\\boxed{42}", read_secret, "\\boxed{0}"])
    settings = Settings(sandbox=SandboxSettings(layer="bubblewrap"))
    with Chat(settings=settings, engine=engine, tir=True, samples=2) as chat:
        reply = chat.send("6*7?")
    first, second = (s.text for s in reply.sample_replies)
    assert "42\n```" in first
    assert "NameError: name 'secret' is not defined" in second
    assert chat.sandbox.pid is None  # the chat's own sandbox never started


class BatchRecordingEngine(ScriptedEngine):
    """Records the batches asked of it (the default decodes them one by one)."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.batches: list[tuple[str, list[int | None], tuple[str, ...]]] = []

    def generate_batch(self, prompt, samplings, *, stop=()):  # type: ignore[no-untyped-def]
        text = "".join(seg.text for seg in prompt)
        self.batches.append((text, [s.seed for s in samplings], tuple(stop)))
        return super().generate_batch(prompt, samplings, stop=stop)


def test_the_samples_first_replies_are_asked_for_in_one_batch_and_later_rounds_alone() -> None:
    code = "```python\nprint(6 * 7)\n```\n```output\n"
    engine = BatchRecordingEngine([code, "\\boxed{42}", "\\boxed{42}", "\\boxed{7}"])
    ran: list[str] = []
    vote = VotingTurn(
        engine, [UserMessage(content="6*7?")], Sampling(seed=5), 3, tir_sample(ran, [])
    )
    list(vote)
    [(prompt, seeds, stop)] = engine.batches  # one batch, for every sample's first reply
    assert seeds == [5, 6, 7] and stop == ("```output",)
    assert prompt == engine.prompts[0]
    assert engine.prompts[1].startswith(prompt) and engine.prompts[1].endswith("42\n```\n")
    assert len(engine.prompts) == 4  # 3 first replies and the first sample's second round
    assert vote.result is not None and vote.result.votes == 2
