"""Files put into the conversation (``ask -f``, the TUI's ``/file``), read as text.

A text file is taken as it is; a PDF through ``pypdf``; DOCX, PPTX and HTML through
Microsoft's ``markitdown`` (the ``documents`` extra), which turns them into Markdown.
Anything else that is not UTF-8 text (an image, an archive, a binary) is refused in one
line that says what can be read. A path may be a file, a directory (its
files, recursively, hidden ones left out), a glob (``'src/*.py'``), or ``-`` for
standard input. Each becomes a :class:`~qwenchat.chatml.Attachment`, which the user
message renders first, named and fenced (so that a second question about the same file
starts with the same tokens, and the engine's prefix library spares reading it again).
"""

from __future__ import annotations

import glob
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from qwenchat.chatml import Attachment, Segment
from qwenchat.errors import InputError

MAX_FILES = 100
"""The most files one path (a directory or a glob) may bring in."""
_PDF = {".pdf"}
_DOCUMENTS = {".docx", ".pptx", ".html", ".htm"}
"""What markitdown reads for us."""


def read_attachments(specs: Sequence[str], stdin: Callable[[], str]) -> list[Attachment]:
    """The files ``specs`` name, read as text, in order; ``-`` is ``stdin()`` (read once).
    Raises :class:`InputError` for a path that names nothing or a file that cannot be
    read as text."""
    found: list[Attachment] = []
    for spec in specs:
        if spec == "-":
            found.append(Attachment(name="stdin", text=stdin()))
            continue
        found += [read_file(path, display) for path, display in _paths(spec)]
    return found


def read_file(path: Path, name: str | None = None) -> Attachment:
    """One file as an attachment named ``name`` (default: the path as given)."""
    name = name or str(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _PDF:
            return Attachment(name=name, text=_pdf_text(path), kind="pdf")
        if suffix in _DOCUMENTS:
            return Attachment(name=name, text=_markitdown_text(path), kind=suffix[1:])
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise InputError(f"{name} is not text (binary data): {_WHAT_READS}")
    try:
        return Attachment(name=name, text=data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text: {_WHAT_READS}") from None


_WHAT_READS = (
    "qwenchat reads text files, PDF, and (with pip install 'qwenchat[documents]') DOCX,"
    " PPTX and HTML"
)


def _paths(spec: str) -> Iterator[tuple[Path, str]]:
    """The files a spec names, with the name each is shown by."""
    path = Path(spec).expanduser()
    if path.is_file():
        yield path, spec
        return
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path))
        )
    elif glob.has_magic(spec):
        files = sorted(p for p in map(Path, glob.glob(str(path), recursive=True)) if p.is_file())
    else:
        raise InputError(f"no such file or directory: {spec}")
    if not files:
        raise InputError(f"{spec} holds no files")
    if len(files) > MAX_FILES:
        raise InputError(
            f"{spec} holds {len(files)} files, more than {MAX_FILES}: name fewer (a glob such"
            " as 'docs/*.md')"
        )
    for file in files:
        yield file, str(file)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InputError(f"{path} is not a PDF pypdf can read: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InputError(f"{path} has no text to read (a scanned PDF needs OCR first)")
    return text


def _markitdown_text(path: Path) -> str:
    try:
        from markitdown import MarkItDown, StreamInfo
    except ImportError:
        raise InputError(
            f"reading {path.suffix} files needs markitdown: pip install 'qwenchat[documents]'"
        ) from None
    try:
        if path.suffix.lower() == ".docx":
            # markitdown's own DOCX path first rewrites the XML with BeautifulSoup, which
            # with lxml 6 drops the w: prefixes, and mammoth then finds no body: so
            # mammoth (markitdown's DOCX reader) is called directly, and markitdown
            # turns its HTML into Markdown.
            import mammoth

            with path.open("rb") as docx:
                html = mammoth.convert_to_html(docx).value.encode()
            stream, info = io.BytesIO(html), StreamInfo(extension=".html", charset="utf-8")
            return str(MarkItDown().convert_stream(stream, stream_info=info).text_content).strip()
        return str(MarkItDown().convert(str(path)).text_content).strip()
    except Exception as exc:  # markitdown raises whatever its converters raise
        raise InputError(f"cannot convert {path}: {type(exc).__name__}: {exc}") from None


def too_long(
    attachments: Sequence[Attachment], count: Callable[[list[Segment]], int], room: int
) -> str | None:
    """What to tell the user when the attachments alone take more than ``room`` tokens
    (the context window less what the rest of the prompt and the reply need), or None."""
    sizes = [(a.name, count([Segment(a.fenced(), False)])) for a in attachments]
    total = sum(tokens for _, tokens in sizes)
    if total <= room:
        return None
    biggest = max(sizes, key=lambda pair: pair[1])
    files = "the file takes" if len(sizes) == 1 else f"the {len(sizes)} files take"
    return (
        f"{files} {total:,} tokens ({biggest[0]}: {biggest[1]:,}) but only about"
        f" {max(room, 0):,} fit in the context window: attach less (a part of the file),"
        " or raise engine.n_ctx (--n-ctx)"
    )
