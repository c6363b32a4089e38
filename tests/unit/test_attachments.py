"""Files put into the conversation: read as text from text files, PDF, DOCX and HTML;
anything else one clear line; rendered first in the user message, named and fenced."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.attachments import MAX_FILES, read_attachments, too_long
from qwenchat.chatml import Attachment, UserMessage, render
from qwenchat.errors import InputError
from qwenchat.store import SessionStore
from tests.documents import write_docx, write_pdf
from tests.unit.test_cli import run_cli
from tests.unit.test_remote_engine import FakeServer, server  # noqa: F401


def no_stdin() -> str:
    raise AssertionError("stdin was not asked for")


def test_text_pdf_docx_and_html_are_read_as_text(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\nThe launch is on May 3.\n")
    write_pdf(tmp_path / "plan.pdf", ["Budget: 4,200 EUR (approved)", "Owner: Ana"])
    write_docx(tmp_path / "minutes.docx", ["Minutes", "Ana will send the draft."])
    (tmp_path / "menu.html").write_text("<h1>Menu</h1><p>Soup: <b>lentil</b></p>")
    names = ["notes.md", "plan.pdf", "minutes.docx", "menu.html"]
    found = read_attachments([str(tmp_path / n) for n in names], stdin=no_stdin)
    assert [(a.kind, a.name) for a in found] == [
        ("text", str(tmp_path / "notes.md")),
        ("pdf", str(tmp_path / "plan.pdf")),
        ("docx", str(tmp_path / "minutes.docx")),
        ("html", str(tmp_path / "menu.html")),
    ]
    assert found[0].text == "# Notes\nThe launch is on May 3.\n"
    assert found[1].text == "Budget: 4,200 EUR (approved)\nOwner: Ana"
    assert found[2].text == "Minutes\n\nAna will send the draft."
    assert found[3].text == "# Menu\n\nSoup: **lentil**"


def test_a_directory_a_glob_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("beta")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("hidden")
    found = read_attachments([str(tmp_path), str(tmp_path / "*.txt"), "-"], stdin=lambda: "gamma")
    assert [a.text for a in found] == ["alpha", "beta", "alpha", "gamma"]
    assert found[-1].name == "stdin"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: (p / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00"), "not text \\(binary"),
        (lambda p: (p / "x.txt").write_bytes("café".encode("latin-1")), "not UTF-8 text"),
        (lambda p: (p / "x.pdf").write_bytes(b"%PDF-1.4 broken"), "not a PDF pypdf can read"),
        (lambda p: None, "no such file or directory"),
    ],
    ids=["binary", "latin-1", "broken-pdf", "missing"],
)
def test_what_cannot_be_read_is_one_line_that_says_why(tmp_path: Path, make, says: str) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    target = next(iter(tmp_path.iterdir()), tmp_path / "x.txt")
    with pytest.raises(InputError, match=says) as caught:
        read_attachments([str(target)], stdin=no_stdin)
    assert "\n" not in str(caught.value)


def test_too_many_files_is_refused(tmp_path: Path) -> None:
    for n in range(MAX_FILES + 1):
        (tmp_path / f"{n}.txt").write_text("x")
    with pytest.raises(InputError, match=f"{MAX_FILES + 1} files"):
        read_attachments([str(tmp_path)], stdin=no_stdin)


def test_attachments_come_first_in_the_message_named_and_fenced() -> None:
    tricky = Attachment(name="a.md", text="code:\n```\nx = 1\n```\n")
    message = UserMessage(content="What does it set?", attachments=[tricky])
    rendered = render([message])
    assert (
        "user\na.md\n````\ncode:\n```\nx = 1\n```\n````\n\nWhat does it set?<|im_end|>" in rendered
    )


def test_files_that_do_not_fit_say_how_many_tokens_they_take() -> None:
    def count(segments: list) -> int:  # type: ignore[type-arg]
        return sum(len(s.text) for s in segments)

    big = Attachment(name="big.txt", text="x" * 1000)
    small = Attachment(name="small.txt", text="y" * 10)
    assert too_long([small], count, room=500) is None
    problem = too_long([big, small], count, room=500)
    assert problem is not None
    assert "the 2 files take 1,044 tokens (big.txt: 1,016)" in problem and "500 fit" in problem


# --- ask -f, over a scripted server ---------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def test_ask_puts_files_first_in_the_prompt_and_keeps_them_in_the_session(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    write_pdf(tmp_path / "plan.pdf", ["The launch is on May 3."])
    server.reply(["May 3."])
    result = run_cli(
        "ask", "--engine", server.url, "--session", "s", "-f", str(tmp_path / "plan.pdf"),
        "-f", "-", "When is the launch?", stdin="piped notes", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [body] = server.completions()
    prompt = body["prompt"]
    start = prompt.index("<|im_start|>user\n")
    expected = (
        f"<|im_start|>user\n{tmp_path / 'plan.pdf'}\n```\nThe launch is on May 3.\n```\n\n"
        "stdin\n```\npiped notes\n```\n\nWhen is the launch?<|im_end|>"
    )
    assert prompt[start:].startswith(expected)
    with SessionStore(Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        [question, _] = store.history(store.get_session("s").id)
    assert question.content == "When is the launch?"
    assert [a.kind for a in question.attachments] == ["pdf", "text"]


def test_ask_with_a_file_it_cannot_read_is_one_line_and_exit_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    result = run_cli(
        "ask", "--engine", "http://127.0.0.1:9", "-f", str(tmp_path / "photo.jpg"), "what?",
        env=env,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert "photo.jpg is not text" in line and "PDF" in line
