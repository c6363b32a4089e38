"""Loading tools from directories, and the example tools in the repo's tools/."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from qwenchat.tools import Tool, ToolRunError, default_tool_dirs, load_tools

EXAMPLES = Path(__file__).resolve().parents[2] / "tools"


def write(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def run(t: Tool | None, arguments: dict[str, Any]) -> str:
    assert t is not None
    return asyncio.run(t.run(arguments))


GOOD = '''
    from typing import Literal

    from collections import OrderedDict  # imported: not a tool


    def greet(name: str, style: Literal["short", "long"] = "short") -> str:
        """Greet someone."""
        return f"hi {name}" if style == "short" else f"hello there, {name}"


    def _helper() -> None:
        """Private: not a tool."""


    hello = greet  # an alias: listed once
'''


def test_good_bad_and_broken_files(tmp_path: Path) -> None:
    good = write(tmp_path, "good.py", GOOD)
    syntax = write(tmp_path, "syntax.py", "x = 1\n\ndef broken(:\n    pass\n")
    raises = write(tmp_path, "raises.py", "import os\n\n\nraise RuntimeError('no config\\nhere')\n")
    missing = write(tmp_path, "missing.py", "import os\nimport not_a_module_anywhere\n")
    result = load_tools([tmp_path])
    assert result.registry.names() == ["calculator", "greet"]
    assert result.problems == [
        f"{missing}:2: ModuleNotFoundError: No module named 'not_a_module_anywhere'",
        f"{raises}:4: RuntimeError: no config here",
        f"{syntax}:3: SyntaxError: invalid syntax",
    ]
    greet = result.registry.get("greet")
    assert greet is not None and greet.source == str(good)
    assert run(greet, {"name": "Ada", "style": "long"}) == "hello there, Ada"


def test_without_builtins_and_private_files_skipped(tmp_path: Path) -> None:
    write(tmp_path, "good.py", GOOD)
    write(tmp_path, "_private.py", "def secret() -> str:\n    '''Secret.'''\n    return ''\n")
    write(tmp_path, "notes.txt", "not python")
    result = load_tools([tmp_path], include_builtin=False)
    assert result.registry.names() == ["greet"] and result.problems == []


def test_error_raised_in_an_imported_helper_points_at_the_import(tmp_path: Path) -> None:
    write(tmp_path, "_shared.py", "VALUE = 1\n\nraise ValueError('bad helper')\n")
    tool_file = write(tmp_path, "uses_helper.py", "import os\nimport _shared\n")
    result = load_tools([tmp_path], include_builtin=False)
    assert result.problems == [f"{tool_file}:2: ValueError: bad helper"]
    assert str(tmp_path) not in sys.path  # only on sys.path during the import


def test_helper_files_can_be_imported(tmp_path: Path) -> None:
    write(tmp_path, "_units_helper.py", "FACTOR = 3\n")
    write(
        tmp_path,
        "triple.py",
        '''
        import _units_helper


        def triple(x: int) -> int:
            """Triple a number."""
            return x * _units_helper.FACTOR
        ''',
    )
    result = load_tools([tmp_path], include_builtin=False)
    assert result.problems == []
    assert run(result.registry.get("triple"), {"x": 2}) == "6"


def test_only_decorated_functions_when_the_file_uses_tool(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mixed.py",
        '''
        from qwenchat.tools import tool


        @tool(safe=True, display_name="Shout")
        def shout(text: str) -> str:
            """Shout the text."""
            return text.upper()


        def helper(text: str) -> str:
            """Not decorated, so not a tool in this file."""
            return text
        ''',
    )
    result = load_tools([tmp_path], include_builtin=False)
    assert result.registry.names() == ["shout"]
    shout = result.registry.get("shout")
    assert shout is not None and (shout.safe, shout.display_name) == (True, "Shout")


def test_function_that_cannot_be_a_tool_is_a_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "partly.py",
        '''
        def fine(x: int) -> int:
            """Fine."""
            return x


        def untyped(x):
            """No hint."""
            return x


        def undocumented(x: int) -> int:
            return x
        ''',
    )
    result = load_tools([tmp_path], include_builtin=False)
    assert result.registry.names() == ["fine"]
    assert result.problems == [
        f"{path}:6: cannot use 'untyped' as a tool: parameter 'x' has no type hint",
        f"{path}:11: cannot use 'undocumented' as a tool:"
        " it has no docstring (the model needs a description)",
    ]


def test_bad_decorator_option_is_a_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad_option.py",
        '''
        from qwenchat.tools import tool


        @tool(timeout=-1)
        def f() -> str:
            """F."""
            return ""
        ''',
    )
    (problem,) = load_tools([tmp_path], include_builtin=False).problems
    assert problem.startswith(f"{path}:4: @tool option 'timeout' for f(): Input should be greater")


def test_name_clash_later_directory_wins(tmp_path: Path) -> None:
    first = write(
        tmp_path / "one",
        "calc.py",
        "def calculator(expression: str) -> str:\n    '''Mine.'''\n    return 'mine'\n",
    )
    second = write(
        tmp_path / "two",
        "calc.py",
        "def calculator(expression: str) -> str:\n    '''Yours.'''\n    return 'yours'\n",
    )
    result = load_tools([tmp_path / "one", tmp_path / "two"])
    assert result.registry.names() == ["calculator"]
    assert run(result.registry.get("calculator"), {"expression": "1"}) == "yours"
    assert result.problems == [
        f"tool 'calculator' from {first} replaces the one from builtin",
        f"tool 'calculator' from {second} replaces the one from {first}",
    ]


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    result = load_tools([tmp_path / "nope"])
    assert result.problems == [f"{tmp_path / 'nope'}: not a directory"]
    assert result.registry.names() == ["calculator"]


def test_default_tool_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path))
    assert default_tool_dirs() == []
    (tmp_path / "tools").mkdir()
    assert default_tool_dirs() == [tmp_path / "tools"]


# --- the example tools in the repo's tools/ ----------------------------------------------


@pytest.fixture(scope="module")
def examples() -> dict[str, Tool]:
    result = load_tools([EXAMPLES], include_builtin=False)
    assert result.problems == []
    return {t.name: t for t in result.registry}


def test_examples_load(examples: dict[str, Tool]) -> None:
    assert sorted(examples) == ["convert_units", "current_datetime", "list_directory", "read_file"]
    assert all(t.safe for t in examples.values())


def test_clock(examples: dict[str, Tool]) -> None:
    now = run(examples["current_datetime"], {"timezone": "UTC"})
    pattern = (
        r'\{"iso": "(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)\+00:00", "date": "\1", "time": "\2",'
        r' "weekday": "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",'
        r' "timezone": "UTC", "utc_offset": "\+00:00"\}'
    )
    assert re.fullmatch(pattern, now), now
    assert '"utc_offset": "+05:30"' in run(
        examples["current_datetime"], {"timezone": "Asia/Kolkata"}
    )


def test_clock_unknown_zone(examples: dict[str, Tool]) -> None:
    with pytest.raises(
        ToolRunError, match=r"^ValueError: unknown time zone 'Mars/Olympus': use an IANA"
    ):
        run(examples["current_datetime"], {"timezone": "Mars/Olympus"})


@pytest.mark.parametrize(
    ("value", "from_unit", "to_unit", "text"),
    [
        (5, "km", "mi", "5 km = 3.106855961 mi"),
        (1, "in", "cm", "1 in = 2.54 cm"),
        (2, "lb", "g", "2 lb = 907.18474 g"),
        (1, "gal", "l", "1 gal = 3.785411784 l"),
        (100, "C", "F", "100 C = 212 F"),
        (-40, "F", "C", "-40 F = -40 C"),
        (0, "K", "C", "0 K = -273.15 C"),
        (32, "F", "K", "32 F = 273.15 K"),
    ],
)
def test_units(
    examples: dict[str, Tool], value: float, from_unit: str, to_unit: str, text: str
) -> None:
    args = {"value": value, "from_unit": from_unit, "to_unit": to_unit}
    assert run(examples["convert_units"], args) == text


@pytest.mark.parametrize(
    ("from_unit", "to_unit", "message"),
    [
        ("kg", "m", r"cannot convert mass \(kg\) to length \(m\)"),
        ("C", "l", r"cannot convert between a temperature and volume \(l\)"),
    ],
)
def test_units_incompatible(
    examples: dict[str, Tool], from_unit: str, to_unit: str, message: str
) -> None:
    with pytest.raises(ToolRunError, match=f"^ValueError: {message}$"):
        run(examples["convert_units"], {"value": 1, "from_unit": from_unit, "to_unit": to_unit})


def test_units_below_absolute_zero(examples: dict[str, Tool]) -> None:
    with pytest.raises(ToolRunError, match="below absolute zero"):
        run(examples["convert_units"], {"value": -300, "from_unit": "C", "to_unit": "K"})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory with files, beside a secret outside it."""
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    root = tmp_path / "work"
    (root / "src").mkdir(parents=True)
    (root / "notes.txt").write_text("hello\nworld\n", encoding="utf-8")
    (root / "src" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside").symlink_to(root / "notes.txt")
    monkeypatch.chdir(root)
    return root


def test_read_file(examples: dict[str, Tool], workdir: Path) -> None:
    read = examples["read_file"]
    assert run(read, {"path": "notes.txt"}) == "hello\nworld\n"
    assert run(read, {"path": "src/main.py"}) == "print('hi')\n"
    assert run(read, {"path": "inside"}) == "hello\nworld\n"  # a symlink that stays inside
    assert (
        run(read, {"path": "notes.txt", "max_bytes": 5})
        == "hello\n[truncated: showed 5 of 12 bytes]"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../secret.txt", "outside the current directory"),
        ("src/../../secret.txt", "outside the current directory"),
        ("escape", "outside the current directory"),
        ("escape_dir/secret.txt", "outside the current directory"),
        ("/etc/passwd", "is absolute"),
        ("../etc/passwd", "outside the current directory"),
        ("missing.txt", "does not exist"),
        ("src", "is not a file: use list_directory"),
        ("blob.bin", "is a binary file"),
    ],
)
def test_read_file_refuses(
    examples: dict[str, Tool], workdir: Path, path: str, message: str
) -> None:
    with pytest.raises(ToolRunError, match=message):
        run(examples["read_file"], {"path": path})


def test_list_directory(examples: dict[str, Tool], workdir: Path) -> None:
    listing = run(examples["list_directory"], {})
    assert listing.splitlines() == [
        "blob.bin (3 bytes)",
        "escape (10 bytes)",
        "escape_dir/",
        "inside (12 bytes)",
        "notes.txt (12 bytes)",
        "src/",
    ]
    assert run(examples["list_directory"], {"path": "src"}) == "main.py (12 bytes)"
    for outside in ("..", "escape_dir", os.fspath(workdir)):
        with pytest.raises(ToolRunError, match=r"outside the current directory|is absolute"):
            run(examples["list_directory"], {"path": outside})
