"""`qwenchat sessions` over a store filled in-process: list, show, export, import, rename,
rm, search, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenchat.store import SessionStore
from tests.unit.test_cli import run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    with SessionStore(data / "sessions.db") as store:
        session = store.create_session(name="trip", title="Trip to Oslo")
        for role, text in [("user", "Plan a day in Oslo."), ("assistant", "Visit the fjord.")]:
            store.add_message(session.id, {"role": role, "content": text})
    return {"QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"), "QWENCHAT_DATA_DIR": str(data)}


def test_list_show_and_search(env: dict[str, str]) -> None:
    listed = run_cli("sessions", "list", env=env)
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if "trip" in line)
    assert row.split()[0] == "1" and "Trip to Oslo" in row and " 2 " in row
    shown = run_cli("sessions", "show", "trip", env=env)
    assert "Plan a day in Oslo." in shown.stdout and "Visit the fjord." in shown.stdout
    found = run_cli("sessions", "search", "fjord", env=env)
    assert found.returncode == 0 and "trip" in found.stdout and "assistant" in found.stdout
    missing = run_cli("sessions", "search", "volcano", env=env)
    assert missing.returncode == 1 and "nothing found" in missing.stderr


def test_export_json_imports_back_as_a_new_session(env: dict[str, str], tmp_path: Path) -> None:
    exported = run_cli("sessions", "export", "1", "--format", "json", env=env)
    document = json.loads(exported.stdout)
    assert [m["content"] for m in document["messages"]] == [
        "Plan a day in Oslo.",
        "Visit the fjord.",
    ]
    assert run_cli("sessions", "rm", "trip", env=env).returncode == 0
    file = tmp_path / "trip.json"
    file.write_text(exported.stdout)
    imported = run_cli("sessions", "import", str(file), env=env)
    assert imported.returncode == 0 and "imported session" in imported.stdout
    assert "Visit the fjord." in run_cli("sessions", "show", "trip", env=env).stdout


def test_rename_and_errors(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli("sessions", "rename", "trip", "Oslo, day one", env=env).returncode == 0
    assert "Oslo, day one" in run_cli("sessions", "list", env=env).stdout
    nope = run_cli("sessions", "show", "nope", env=env)
    assert nope.returncode == 2 and "no session 'nope'" in nope.stderr
    bad_format = run_cli("sessions", "export", "trip", "--format", "pdf", env=env)
    assert bad_format.returncode == 2 and "expected md or json" in bad_format.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    bad_import = run_cli("sessions", "import", str(junk), env=env)
    assert bad_import.returncode == 2 and "Traceback" not in bad_import.stderr


def test_a_corrupt_store_is_moved_aside_and_reported(env: dict[str, str]) -> None:
    db = Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db"
    db.write_bytes(b"this is not a database" * 100)
    listed = run_cli("sessions", "list", env=env)
    assert listed.returncode == 0 and "warning:" in listed.stderr
    aside = [p for p in db.parent.iterdir() if ".corrupt-" in p.name]
    assert aside and aside[0].read_bytes() == b"this is not a database" * 100
