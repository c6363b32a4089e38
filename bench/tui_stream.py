"""UI cost of streaming a reply: the real reply widgets against a plain Static, side by side.

Scripted replies are fed token by token from a thread, as the app's reply worker does,
into the real widgets (the Conversation, an AssistantBubble, its ReplyView buffering the
deltas and redrawing every FLUSH_INTERVAL) in an app laid out like qwenchat's (its style
sheet; the conversation above the focused input box, the status line, the key hints;
the input's cursor held still, as the app holds it while a reply streams), on a virtual
120x40 terminal: the whole render path runs, escape sequences included,
and the output is dropped. Two replies, each at 50 tokens/s and at full speed (every
delta fed as fast as the thread can call feed(), so one redraw shows the whole reply,
as when a stored reply is shown):

  (a) mixed   4,000+ tokens of Markdown: headings, prose with inline markup, bullet,
              numbered and nested lists, three short code blocks and a table
  (b) code    one reply holding a single 600-line Python code block (a line of prose
              before it and one after it)

Tokens: a stand-in for Qwen's BPE (no model needed): words with their leading space,
digit runs of up to 3, punctuation runs of up to 3, newline runs, indentation, words
longer than 6 letters cut into 4-letter pieces: 4.3 characters a token for (a), 3.3
for (b), about what Qwen2.5's tokenizer gets on English prose and on code.

Each run is a fresh process (no run inherits another's heap, which the cycle collector
would scan), which first streams two short replies, untimed (first parse, first
highlight, lazy imports), then the timed one. Measured on the event loop (the main
thread), by timing the waits in its selector: the time between two waits is busy.

  ms/tok       each flush of the reply (a timer tick, or finish()) begins a cycle that
               lasts until the next flush; the cycle's busy time (the flush, Markdown
               parsing, layout, the screen update) is shared equally among the tokens
               that flush drew; median and p99 over all the tokens
  max stall    the longest busy stretch, from the first delta until the reply has
               finished: how long a key press could have waited
  last token   from the last feed() to the screen update after which the reply's last
               line is on screen (read back from the compositor right after that update;
               the view follows the end of the conversation). As in the app, finish() is
               called when the stream ends, one token later (the end-of-reply token)
  total busy   main-thread busy time from the first delta until finish() returned, plus
               100 ms (the last screen updates)
  gc           pauses of Python's cycle collector in that time: the longest, and in all

Baseline: the same deltas into a plain Static (no Markdown), in the same place, buffered
the same way and redrawn on the same cadence with update(whole text so far). Reported:
its figures, and the ratio of total busy times, reply / static.

Targets, at 50 tokens/s, for (a) and (b): median busy <= 1 ms a token, longest stall
<= 50 ms, last token on screen <= 100 ms after the last delta. Full speed: information.
A 50 tokens/s run takes as long as the reply at that rate (84 s for (a), 102 s for (b),
twice: reply and Static; about 8 minutes in all); --quick streams short versions of
both replies instead (about 2 minutes). --gc shows how much of the stalls is the cycle
collector's.

    .venv/bin/python bench/tui_stream.py [--quick] [--rates 50,full] [--gc app|on|freeze|off]
        [--repeats 1] [--warmup 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import json
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import Report, main_guard, parse, parser, progress, run_json
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import Footer, Static

import qwenchat.tui
from qwenchat.tui.collector import Collector
from qwenchat.tui.screens.chat import ChatScreen
from qwenchat.tui.widgets.conversation import Conversation
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.reply import FLUSH_INTERVAL, ReplyView

SIZE = (120, 40)
MIXED_TOKENS = 4000
CODE_LINES = 600
QUICK_MIXED_TOKENS = 600  # the fixed parts alone: lists, three code blocks, the table
QUICK_CODE_LINES = 100
TARGET_MEDIAN_MS = 1.0
TARGET_STALL_MS = 50.0
TARGET_LAST_MS = 100.0
SEEN_TIMEOUT_S = 5.0  # a last line not on screen by then counts as never shown
SETTLE_S = 0.1
APP_CSS = Path(qwenchat.tui.__file__).with_name("app.tcss")
TAG = "(reply 7f3a)"  # makes the last line unique on screen


# --- the scripted replies ------------------------------------------------------------

_PIECE = re.compile(r" ?[A-Za-z]+| ?\d{1,3}| ?[^\sA-Za-z\d]{1,3}|\n+|[ \t]+|\s")


def tokenize(text: str) -> list[str]:
    """A stand-in for BPE: see the module docstring."""
    tokens: list[str] = []
    for piece in _PIECE.findall(text):
        word = piece.lstrip(" ")
        if word.isalpha() and len(word) > 6:
            cuts = [word[i : i + 4] for i in range(0, len(word), 4)]
            cuts[0] = piece[: len(piece) - len(word)] + cuts[0]
            tokens.extend(cuts)
        else:
            tokens.append(piece)
    if "".join(tokens) != text:
        raise AssertionError("the tokenizer lost text")
    return tokens


@dataclass(frozen=True)
class Reply:
    name: str
    prompt: str
    text: str
    last_line: str  # the reply's last line, shown as is: on screen once it is all there
    tokens: list[str] = field(default_factory=list)


_VOCABULARY = (
    "the a an this that each every cache request server client value key table index thread "
    "lock queue buffer stream token model reply prompt layer block line file path option "
    "default setting user session history context window memory disk network time second "
    "limit size number list item field record error result call function method class "
    "module package test case example step way part point state change update read write "
    "send keep return start stop run load save parse render draw show check handle is are "
    "can will should may when if so because then while after before with without into from "
    "for of to in on by at fast slow small large new old first last next other same simple"
)
_WORDS = _VOCABULARY.split()

_CODE_1 = '''```python
from functools import lru_cache


@lru_cache(maxsize=256)
def fetch_user(user_id: int) -> dict:
    """One database round trip per user, then served from memory."""
    row = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise KeyError(user_id)
    return dict(row)
```'''

_CODE_2 = """```bash
python -m venv .venv
. .venv/bin/activate
pip install redis==5.0.4
redis-server --maxmemory 256mb --maxmemory-policy allkeys-lru &
python -m myapp.serve --cache redis://localhost:6379/0
```"""

_CODE_3 = """```toml
[cache]
backend = "redis"
url = "redis://localhost:6379/0"
ttl_seconds = 300
max_entries = 10_000

[cache.warmup]
enabled = true
keys = ["users:top", "products:featured"]
```"""

_TABLE = """| Setting | Default | What it does |
|---------|---------|--------------|
| `maxsize` | 128 | Entries kept before the least recently used one is dropped |
| `ttl_seconds` | none | How long an entry stays valid after it was written |
| `typed` | false | Whether `1` and `1.0` are cached as different keys |
| `backend` | memory | Where entries live: this process, Redis or Memcached |
| `max_entries` | 10000 | A hard cap on the number of keys in the shared cache |
| `warmup.enabled` | false | Fill the cache with the hottest keys at start-up |
| `warmup.keys` | [] | Which keys to load when warm-up is on |
| `policy` | lru | Which entry to evict when the cache is full |"""


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 20))
    roll = rng.random()
    if roll < 0.2:
        at = rng.randrange(len(words))
        words[at] = f"`{words[at]}_{rng.choice(_WORDS)}()`"
    elif roll < 0.35:
        at = rng.randrange(len(words) - 1)
        words[at : at + 2] = [f"**{words[at]} {words[at + 1]}**"]
    if len(words) > 10 and rng.random() < 0.5:
        words[len(words) // 2] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def _bullets(rng: random.Random, numbered: bool = False, nested: bool = False) -> str:
    lines = []
    for i in range(rng.randint(4, 7)):
        mark = f"{i + 1}." if numbered else "-"
        lines.append(f"{mark} **{rng.choice(_WORDS).title()}**: {_sentence(rng)}")
        if nested and i % 2 == 0:
            lines.extend(f"  - {_sentence(rng)}" for _ in range(2))
    return "\n".join(lines)


def mixed_reply(min_tokens: int) -> Reply:
    """(a): prose, lists, three short code blocks and a table, with as many paragraphs
    between them as it takes to reach ``min_tokens``."""
    last = f"Let me know if you would like a test suite for this as well {TAG}."
    for fill in range(100):
        rng = random.Random(7)

        def prose(fill: int = fill, rng: random.Random = rng) -> list[str]:
            return [_paragraph(rng) for _ in range(fill)]

        blocks = [
            "Caching pays off when the same expensive call is made again and again. "
            "Here is how I would set it up, step by step.",
            "## Why cache",
            *prose(),
            _bullets(rng),
            "A first version, in the process itself:",
            _CODE_1,
            *prose(),
            "### The settings that matter",
            _TABLE,
            *prose(),
            _bullets(rng, numbered=True),
            "To share the cache between processes, run Redis next to the app:",
            _CODE_2,
            *prose(),
            "## Configuration",
            _bullets(rng, nested=True),
            _CODE_3,
            *prose(),
            last,
        ]
        text = "\n\n".join(blocks)
        tokens = tokenize(text)
        if len(tokens) >= min_tokens:
            prompt = "How should I add caching to my web service?"
            return Reply("(a) mixed", prompt, text, last, tokens)
    raise AssertionError("could not build the mixed reply")


def _code_lines(count: int, rng: random.Random) -> list[str]:
    lines = [
        '"""Readers and checks for the records of the import job."""',
        "",
        "from __future__ import annotations",
        "",
        "import json",
        "import re",
        "from dataclasses import dataclass",
        "from pathlib import Path",
        "",
    ]
    n = 0
    while len(lines) < count:
        n += 1
        name, other = rng.choice(_WORDS), rng.choice(_WORDS)
        if n % 3 == 0:
            lines += [
                "",
                "@dataclass",
                f"class {name.title()}{other.title()}{n}:",
                f'    """A {name} {other} as the job reads it."""',
                "",
                "    name: str",
                f"    size: int = {rng.randint(1, 4096)}",
                "    tags: tuple[str, ...] = ()",
                "",
                "    def describe(self) -> str:",
                '        return f"{self.name} ({self.size} bytes, {len(self.tags)} tags)"',
                "",
            ]
        elif n % 3 == 1:
            lines += [
                "",
                f"def load_{name}_{n}(path: Path, limit: int = {rng.randint(10, 999)})"
                " -> list[dict]:",
                f'    """Read up to ``limit`` {name} records from a JSON-lines file."""',
                "    records = []",
                '    with path.open(encoding="utf-8") as handle:',
                "        for number, line in enumerate(handle, 1):",
                "            if number > limit:",
                "                break",
                "            line = line.strip()",
                "            if not line or line.startswith('#'):",
                "                continue",
                "            records.append(json.loads(line))",
                "    return records",
                "",
            ]
        else:
            lines += [
                "",
                f"def check_{other}_{n}(values: list[int], floor: int = {rng.randint(0, 99)})"
                " -> int:",
                f"    # Count the {other} values at or above the floor, ignoring the odd ones.",
                "    total = 0",
                "    for value in values:",
                "        if value % 2 == 0 and value >= floor:",
                f"            total += value * {rng.randint(2, 9)}",
                "    return total",
                "",
            ]
    return lines[:count]


def code_reply(lines: int) -> Reply:
    """(b): one code block of ``lines`` lines, with a line of prose before and after it."""
    body = "\n".join(_code_lines(lines, random.Random(11)))
    last = f"That is the whole module, {lines} lines {TAG}."
    text = f"Here is the module, in one file:\n\n```python\n{body}\n```\n\n{last}"
    prompt = "Write the import job's record readers and checks as one Python module."
    return Reply("(b) code", prompt, text, last, tokenize(text))


# --- the app ---------------------------------------------------------------------------


class _Terminal(HeadlessDriver):
    """A terminal that drops what it is sent. Unlike Textual's headless driver it is not
    headless, so the app turns every screen update into escape sequences, as for a real
    terminal."""

    written = 0

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        _Terminal.written += len(data)


class PlainReply(Static):
    """The baseline: the reply as plain text, buffered and redrawn like a ReplyView."""

    DEFAULT_CSS = "PlainReply { height: auto; padding: 0 1 0 2; }"

    def __init__(self) -> None:
        super().__init__("", markup=False, classes="message")
        self.text = ""
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def on_mount(self) -> None:
        self._timer = self.set_interval(FLUSH_INTERVAL, self.flush)

    def feed(self, delta: str) -> None:
        with self._lock:
            self._pending.append(delta)

    async def flush(self) -> None:
        await self._flush()

    async def _flush(self) -> None:
        with self._lock:
            new, self._pending = "".join(self._pending), []
        if new:
            self.text += new
            self.update(self.text)

    async def finish(self, figures: str = "") -> None:
        self._timer.stop()
        await self._flush()


class StreamApp(App[None]):
    """The app's layout and style sheet: the conversation over the focused input box, the
    status line and the key hints below (no sidebar: it starts hidden)."""

    CSS_PATH = APP_CSS

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"), Vertical(id="chat"):
            yield Conversation(id="conversation")
            yield PromptInput(id="input")
        yield Static("qwen2.5-coder-0.5b-instruct Q4_K_M · CPU · ctx 1,024/4,096", id="status")
        yield Footer()

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()

    def on_mount(self) -> None:
        self.query_one(PromptInput).focus()


# --- measuring -------------------------------------------------------------------------


class LoopClock:
    """Wraps the event loop's selector: the time between two waits is busy time."""

    def __init__(self, selector: Any) -> None:
        self._inner = selector
        self.recording = False
        self.busy: list[tuple[float, float]] = []  # (end, busy seconds)
        self._woke = time.perf_counter()
        self._skip = 0.0

    def select(self, timeout: float | None = None) -> Any:
        now = time.perf_counter()
        if self.recording:
            self.busy.append((now, now - self._woke - self._skip))
        self._skip = 0.0
        try:
            return self._inner.select(timeout)
        finally:
            self._woke = time.perf_counter()

    def exclude(self, seconds: float) -> None:
        """Time the benchmark itself spent on the loop (reading the screen): not busy."""
        self._skip += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class GcClock:
    """The pauses of Python's cycle collector (all threads; the main thread's, here)."""

    def __init__(self) -> None:
        self.recording = False
        self.pauses: list[float] = []  # seconds
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self.recording:
            self.pauses.append(time.perf_counter() - self._start)


@contextmanager
def _marking_flushes(cls: type, marks: list[tuple[float, int]], fed: list[int]) -> Iterator[None]:
    """Record (time, tokens fed so far) at the start of every flush of ``cls`` (its
    ``_flush``: the timer's and finish()'s)."""
    original = cls._flush

    async def _flush(self: Any) -> None:
        marks.append((time.perf_counter(), fed[0]))
        await original(self)

    cls._flush = _flush
    try:
        yield
    finally:
        cls._flush = original


async def stream_once(
    contender: str,
    reply: Reply,
    rate: float | None,
    clock: LoopClock,
    gc_mode: str = "app",
) -> dict[str, Any]:
    """Stream ``reply`` into a fresh app, into a ReplyView ("reply") or a Static ("static");
    return the figures of the run."""
    marks: list[tuple[float, int]] = []
    fed = [0]
    tokens = reply.tokens
    cls = ReplyView if contender == "reply" else PlainReply
    app = StreamApp(driver_class=_Terminal)
    with _marking_flushes(cls, marks, fed):
        async with app.run_test(headless=False, size=SIZE) as pilot:
            conversation = app.query_one(Conversation)
            await conversation.add_user(reply.prompt)
            if contender == "reply":
                bubble: Any = await conversation.start_reply()
                view: Any = bubble.reply
            else:
                bubble = view = PlainReply()
                await conversation.mount(view)
            await pilot.pause()
            await asyncio.sleep(0.2)

            # What the screen shows: read after each update once the last delta is fed.
            armed, seen_at = threading.Event(), []
            display = app._display

            def watched(screen: Any, renderable: Any) -> None:
                display(screen, renderable)
                if not armed.is_set() or seen_at or renderable is None or app._batch_count:
                    return
                shown = time.perf_counter()
                strips = screen._compositor.render_strips()
                if any(reply.last_line in strip.text for strip in strips):
                    seen_at.append(shown)
                clock.exclude(time.perf_counter() - shown)

            app._display = watched  # type: ignore[method-assign]

            loop = asyncio.get_running_loop()
            done = asyncio.Event()
            times: dict[str, float] = {}

            def feeder() -> None:
                """The reply worker: the deltas, then (the model's end-of-reply token
                later) finish() on the UI thread, as the app's _reply_done does."""
                start = times["first"] = time.perf_counter()
                for i, token in enumerate(tokens):
                    if rate:
                        delay = start + i / rate - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                    if i == len(tokens) - 1:
                        armed.set()
                        times["last"] = time.perf_counter()
                    view.feed(token)
                    fed[0] = i + 1
                if rate:
                    time.sleep(1 / rate)
                app.call_from_thread(bubble.finish, "4,000 tokens · 50.0 tok/s")
                times["finished"] = time.perf_counter()
                loop.call_soon_threadsafe(done.set)

            _Terminal.written = 0
            clock.busy.clear()
            clock.recording = True
            idle_from = time.perf_counter()
            await asyncio.sleep(0.5)
            idle_busy = sum(b for _, b in clock.busy) / (time.perf_counter() - idle_from)
            clock.busy.clear()
            # As QwenchatApp._writing does while a reply streams (a blink repaints the box).
            app.query_one(PromptInput).cursor_blink = False
            collector = GcClock()
            policy = Collector()
            if gc_mode == "app":  # what QwenchatApp does around a reply
                policy.settled()
                policy.streaming()
            elif gc_mode == "freeze":
                gc.freeze()
            elif gc_mode == "off":
                gc.disable()
            collector.recording = True
            thread = threading.Thread(target=feeder, name="feeder", daemon=True)
            thread.start()
            await done.wait()
            deadline = time.perf_counter() + SEEN_TIMEOUT_S
            while not seen_at and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(SETTLE_S)
            clock.recording = False
            collector.recording = False
            policy.settled()
            gc.enable()
            gc.unfreeze()
            thread.join()
            if view.text != reply.text:
                raise AssertionError(f"{contender}: the view lost text")

    first, end = times["first"], times["finished"] + SETTLE_S
    busy = sorted((e, b) for e, b in clock.busy if first <= e <= end)
    ends = [e for e, _ in busy]
    sums = [0.0]
    for _, b in busy:
        sums.append(sums[-1] + b)

    def busy_between(a: float, z: float) -> float:
        return sums[bisect.bisect_left(ends, z)] - sums[bisect.bisect_left(ends, a)]

    # A busy stretch belongs to the flush cycle it ends in: the one a flush starts in
    # ends after the flush began.
    marks = [m for m in marks if m[0] >= first]
    per_token: list[float] = []
    before = 0
    for k, (at, count) in enumerate(marks):
        until = marks[k + 1][0] if k + 1 < len(marks) else end
        new = count - before
        before = count
        if new > 0:
            per_token += [busy_between(at, until) * 1e3 / new] * new
    return {
        "contender": contender,
        "tokens": len(tokens),
        "per_token_ms": per_token,
        "stall_ms": max((b for _, b in busy), default=0.0) * 1e3,
        "last_token_ms": (seen_at[0] - times["last"]) * 1e3 if seen_at else None,
        "busy_ms": sums[-1] * 1e3,
        "idle_busy_pct": idle_busy * 100,
        "feed_s": times["last"] - first,
        "flushes": sum(1 for _ in marks),
        "written_kib": _Terminal.written / 1024,
        "gc_max_ms": max(collector.pauses, default=0.0) * 1e3,
        "gc_total_ms": sum(collector.pauses) * 1e3,
    }


def build_reply(name: str, quick: bool) -> Reply:
    if name == "mixed":
        return mixed_reply(QUICK_MIXED_TOKENS if quick else MIXED_TOKENS)
    return code_reply(QUICK_CODE_LINES if quick else CODE_LINES)


async def child(config: dict[str, Any]) -> dict[str, Any]:
    """One run, in a process of its own (so that no run inherits another's heap): warm-up
    streams (first parse, first highlight, lazy imports), then the timed one."""
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop._selector)  # type: ignore[attr-defined]
    loop._selector = clock  # type: ignore[attr-defined]
    # Markdown parses in the loop's executor: start its thread now, outside any app, or
    # the thread would keep that app alive (it keeps the sys.stderr of its birth).
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    await loop.run_in_executor(None, time.sleep, 0)
    for _ in range(config["warmup"]):
        for warm in (mixed_reply(0), code_reply(QUICK_CODE_LINES)):
            await stream_once(config["contender"], warm, None, clock)
    reply = build_reply(config["reply"], config["quick"])
    gc.collect()
    return await stream_once(config["contender"], reply, config["rate"], clock, config["gc"])


# --- the report --------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def _rate_name(rate: float | None) -> str:
    return "full speed" if rate is None else f"{rate:g} tok/s"


def _parse_rates(text: str) -> list[float | None]:
    return [None if part.strip() == "full" else float(part) for part in text.split(",")]


def main() -> None:
    cli = parser(__doc__, repeats=1, warmup=1, model=False)
    cli.add_argument(
        "--quick",
        action="store_true",
        help=f"short replies: (a) about {QUICK_MIXED_TOKENS} tokens, (b) {QUICK_CODE_LINES} "
        "lines of code",
    )
    cli.add_argument(
        "--rates",
        default="50,full",
        help="tokens/s to feed at, comma-separated; 'full': as fast as possible (default 50,full)",
    )
    cli.add_argument(
        "--gc",
        choices=("app", "on", "freeze", "off"),
        default="app",
        help="Python's cycle collector during the timed stream: app (as QwenchatApp runs it: "
        "the heap frozen before the reply, no full collections during it, see "
        "qwenchat/tui/collector.py); on (Python's defaults); "
        "freeze: gc.freeze() first, so it no longer scans what existed before the reply; "
        "off: disabled, the widgets' own cost (default on)",
    )
    cli.add_argument("--child", help=argparse.SUPPRESS)
    args = parse(cli)
    if args.child:
        result = asyncio.run(child(json.loads(args.child)))
        print(json.dumps(result))
        return
    try:
        rates = _parse_rates(args.rates)
    except ValueError:
        cli.error("--rates: numbers or 'full', comma-separated")
    replies = {name: build_reply(name, args.quick) for name in ("mixed", "code")}

    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for i in range(args.repeats):
        for name, reply in replies.items():
            for rate in rates:
                order = ("reply", "static") if i % 2 == 0 else ("static", "reply")
                for contender in order:
                    progress(
                        f"run {i + 1}/{args.repeats}: {reply.name}, {_rate_name(rate)}, "
                        f"{contender} ({len(reply.tokens)} tokens)"
                    )
                    config = {
                        "contender": contender,
                        "reply": name,
                        "quick": args.quick,
                        "rate": rate,
                        "warmup": args.warmup,
                        "gc": args.gc,
                    }
                    result = run_json([sys.executable, __file__, "--child", json.dumps(config)])
                    runs.setdefault((reply.name, _rate_name(rate), contender), []).append(result)

    report = Report(
        "tui_stream",
        {
            "terminal": f"{SIZE[0]}x{SIZE[1]}",
            "flush interval": f"{FLUSH_INTERVAL * 1e3:.1f} ms",
            "replies": "; ".join(
                f"{r.name} {len(r.tokens)} tokens, {len(r.text)} chars "
                f"({len(r.text) / len(r.tokens):.2f} chars/token)"
                for r in replies.values()
            ),
            "repeats": f"{args.repeats}, each run in a fresh process after "
            f"{args.warmup} warm-up stream(s) of each reply",
            "gc": args.gc,
            "python": sys.version.split()[0],
        },
    )
    rows = []
    for (name, rate_name, contender), rs in runs.items():
        per_token = [x for r in rs for x in r["per_token_ms"]]
        rows.append(
            [
                name,
                rate_name,
                contender,
                f"{statistics.median(per_token):.3f}" if per_token else "-",
                f"{p99(per_token):.3f}" if per_token else "-",
                f"{max(r['stall_ms'] for r in rs):.1f}",
                "/".join(_ms(r["last_token_ms"]) for r in rs),
                f"{statistics.median(r['busy_ms'] for r in rs):.0f}",
                f"{statistics.median(r['feed_s'] for r in rs):.2f}",
                f"{statistics.median(r['flushes'] for r in rs):.0f}",
                f"{max(r['gc_max_ms'] for r in rs):.1f}",
                f"{statistics.median(r['gc_total_ms'] for r in rs):.0f}",
                f"{max(r['idle_busy_pct'] for r in rs):.2f}",
            ]
        )
    report.table(
        [
            "reply",
            "rate",
            "into",
            "median ms/tok",
            "p99 ms/tok",
            "max stall ms",
            "last token ms",
            "total busy ms",
            "feed s",
            "flushes",
            "max gc ms",
            "gc ms",
            "idle busy %",
        ],
        rows,
    )
    for reply in replies.values():
        for rate in rates:
            key = (reply.name, _rate_name(rate))
            ours, base = runs[(*key, "reply")], runs[(*key, "static")]
            label = f"{reply.name}, {_rate_name(rate)}:"
            per_token = [x for r in ours for x in r["per_token_ms"]]
            timed = rate is not None
            report.ratio(
                f"{label} median busy ms/token",
                statistics.median(per_token) if per_token else float("nan"),
                f"<= {TARGET_MEDIAN_MS:g}" if timed else None,
            )
            report.ratio(f"{label} p99 busy ms/token", p99(per_token))
            report.ratio(
                f"{label} longest stall ms",
                max(r["stall_ms"] for r in ours),
                f"<= {TARGET_STALL_MS:g}" if timed else None,
            )
            lasts = [r["last_token_ms"] for r in ours]
            report.ratio(
                f"{label} last token on screen ms",
                float("inf") if None in lasts else max(lasts),
                f"<= {TARGET_LAST_MS:g}" if timed else None,
            )
            report.ratio(
                f"{label} total busy, reply / static",
                statistics.median(r["busy_ms"] for r in ours)
                / statistics.median(r["busy_ms"] for r in base),
            )
    report.note(
        "busy per token: a flush cycle's main-thread busy time shared among the tokens it "
        "drew; stall: the longest busy stretch; last token: last feed() to the screen "
        "update showing the reply's last line (finish() called one token later, as the app "
        "does when the model stops)"
    )
    report.results = {
        f"{name} | {rate} | {contender}": [
            {k: v for k, v in r.items() if k != "per_token_ms"}
            | {
                "median_ms_per_token": statistics.median(r["per_token_ms"])
                if r["per_token_ms"]
                else None,
                "p99_ms_per_token": p99(r["per_token_ms"]),
            }
            for r in rs
        ]
        for (name, rate, contender), rs in runs.items()
    }
    report.emit(args.json)


def _ms(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main_guard(main)
