"""Opening the session database: pragmas, integrity check, migrations, and errors.

A file that is not a database, or fails ``PRAGMA quick_check``, is never written
to: it is renamed to ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` (with its ``-wal``,
``-shm`` and ``-journal`` files) and a fresh database takes its place. A database
another process keeps locked past the busy timeout is a :class:`StoreError`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwenchat.errors import InputError, QwenchatError
from qwenchat.store import schema

# Moved before the database itself: a stale WAL or journal next to a fresh
# database would be replayed into it.
_COMPANIONS = ("-wal", "-shm", "-journal")


class StoreError(QwenchatError):
    """The session store cannot be used: locked, unreadable, or from a newer qwenchat."""


class StoreInputError(StoreError, InputError):
    """A request the store cannot satisfy: an unknown session or message, a bad import."""


class _Damaged(Exception):
    """The file is not a usable database; the message says why."""


def open_db(path: Path, timeout: float) -> tuple[sqlite3.Connection, str | None]:
    """Open (creating or upgrading) the database at ``path``.

    Returns the connection and a one-line notice when a damaged file was moved aside.
    """
    try:
        exists = path.exists()
    except OSError as exc:  # a directory on the way that this user may not enter
        raise StoreError(f"cannot open the session store {path}: {exc.strerror}") from None
    if exists and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return _connect_read_only(path, timeout), (
            f"the session store {path} is read-only here: sessions can be read, but"
            " nothing new is saved"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the session store's directory {path.parent}: {exc.strerror}"
        ) from None
    notice = None
    with sqlite_errors(path):
        try:
            _check(path, timeout)
        except _Damaged as exc:
            reason = " ".join(str(exc).split())  # quick_check's report spans lines
            aside = _move_aside(path)
            notice = (
                f"the session store {path} was damaged ({reason}); "
                f"moved it to {aside} and started a new, empty one"
            )
        return _connect(path, timeout), notice


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3's errors into one-line :class:`StoreError` messages."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "is locked" in str(exc):
            raise StoreError(
                f"the session store {path} is locked by another process;"
                " wait for it to finish, or close it, and try again"
            ) from None
        raise StoreError(f"cannot use the session store {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"the session store {path} failed: {exc}; restart qwenchat to check it"
        ) from None


@contextmanager
def transaction(db: sqlite3.Connection, write: bool = True) -> Iterator[sqlite3.Connection]:
    """One transaction; a write one takes the lock up front, where the busy timeout applies."""
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    # Autocommit: transactions are explicit. Any thread may use it; the store serializes.
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db, path)
    except BaseException:
        db.close()
        raise
    db.row_factory = sqlite3.Row
    return db


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """The database, read only. ``immutable``: SQLite then needs no ``-shm`` file, which
    a directory it cannot write would not let it make; what it reads is as it was."""
    with sqlite_errors(path):
        uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
        db = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        return db


def _check(path: Path, timeout: float) -> None:
    """Raise :class:`_Damaged` unless ``path`` is missing or passes ``quick_check``."""
    if not path.exists():
        return
    # Read-only: on closing, a writable connection checkpoints the WAL into the file
    # and deletes it, which would alter a damaged file and lose its WAL.
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        # Exactly DatabaseError is SQLITE_CORRUPT or SQLITE_NOTADB; its subclasses
        # (OperationalError: locked, no permission, I/O) say nothing about the file.
        if type(exc) is sqlite3.DatabaseError:
            raise _Damaged(str(exc)) from None
        raise
    finally:
        db.close()
    if result != "ok":
        raise _Damaged(f"integrity check: {result}")


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version, known = _user_version(db), len(schema.MIGRATIONS)
    if version > known:
        raise StoreError(
            f"the session store {path} has schema version {version}, newer than this"
            f" qwenchat knows ({known}); upgrade qwenchat"
        )
    for target in range(version + 1, known + 1):
        with transaction(db):
            # Another process may have migrated since the version was read.
            if _user_version(db) < target:
                _apply(db, path, target)


def _apply(db: sqlite3.Connection, path: Path, target: int) -> None:
    try:
        for statement in schema.MIGRATIONS[target - 1]:
            db.execute(statement)
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot upgrade the session store {path} to schema version {target}: {exc}"
        ) from None
    db.execute(f"PRAGMA user_version = {target}")
