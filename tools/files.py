"""Example tools: read-only access to files under the current directory.

Paths are confined to the directory qwenchat was started in: absolute paths,
``..`` and symlinks that lead outside it are refused, so these tools are safe to
run without asking.
"""

from __future__ import annotations

from pathlib import Path

from qwenchat.tools import tool

MAX_READ = 1_000_000
MAX_ENTRIES = 500


@tool(safe=True, display_name="Read file")
def read_file(path: str, max_bytes: int = 20000) -> str:
    """Read a text file from the current directory (or a subdirectory of it).

    Returns the file's text (UTF-8). A longer file is cut after max_bytes and ends
    with a line "[truncated: showed N of M bytes]". Binary files and paths outside
    the current directory are refused. Use list_directory to find file names.

    Args:
        path: the file's path relative to the current directory, e.g. "README.md"
            or "src/main.py"; no absolute paths and no "..".
        max_bytes: the most bytes to read, from 1 to 1000000.
    """
    if not 1 <= max_bytes <= MAX_READ:
        raise ValueError(f"max_bytes must be from 1 to {MAX_READ}, not {max_bytes}")
    target = _confined(path)
    if not target.is_file():
        raise ValueError(
            f"{path!r} is not a file" + (": use list_directory" if target.is_dir() else "")
        )
    size = target.stat().st_size
    with target.open("rb") as f:
        data = f.read(max_bytes)
    if b"\0" in data:
        raise ValueError(f"{path!r} is a binary file, not text")
    text = data.decode("utf-8", errors="replace")  # a cut may split a character
    return text if size <= max_bytes else f"{text}\n[truncated: showed {max_bytes} of {size} bytes]"


@tool(safe=True, display_name="List directory")
def list_directory(path: str = ".") -> str:
    """List the files and subdirectories of a directory under the current directory.

    Returns one entry per line, sorted by name: subdirectories end with "/", files
    are followed by their size, e.g. "notes.txt (1234 bytes)". At most 500 entries.

    Args:
        path: the directory relative to the current directory, e.g. "." (the
            current directory itself) or "src"; no absolute paths and no "..".
    """
    target = _confined(path)
    if not target.is_dir():
        raise ValueError(f"{path!r} is not a directory")
    entries = sorted(target.iterdir(), key=lambda p: p.name)
    lines = [_describe(entry) for entry in entries[:MAX_ENTRIES]]
    if len(entries) > MAX_ENTRIES:
        lines.append(f"... and {len(entries) - MAX_ENTRIES} more")
    return "\n".join(lines) or "(empty directory)"


def _confined(path: str) -> Path:
    """``path`` resolved (symlinks followed) if it stays inside the current directory."""
    if Path(path).is_absolute():
        raise ValueError(f"{path!r} is absolute: give a path relative to the current directory")
    root = Path.cwd().resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{path!r} is outside the current directory")
    if not target.exists():
        raise ValueError(f"{path!r} does not exist")
    return target


def _describe(entry: Path) -> str:
    if entry.is_dir():
        return f"{entry.name}/"
    try:
        return f"{entry.name} ({entry.stat().st_size} bytes)"
    except OSError:  # a broken symlink
        return entry.name
