"""Getting models from the Hugging Face hub: ``qwenchat models pull``.

A name is one of:

* an alias, ``FAMILY:SIZE`` or ``FAMILY:SIZE-QUANT`` (e.g. ``qwen2.5:7b``,
  ``qwen2.5-coder:1.5b-q8_0``), for the repositories in :data:`FAMILIES`; the
  quantisation defaults to :data:`DEFAULT_QUANT`;
* ``OWNER/REPO:FILE.gguf``, a file of any GGUF repository;
* ``OWNER/REPO:QUANT`` or ``OWNER/REPO``: the repository's file whose name ends
  with that quantisation (default :data:`DEFAULT_QUANT`).

``qwen2.5`` and ``qwen2.5-coder`` map to Qwen's official GGUF repositories
(``Qwen/Qwen2.5-7B-Instruct-GGUF``...). Qwen publishes no GGUF of Qwen2.5-Math,
so ``qwen2.5-math`` maps to a community repository named explicitly in the table:
bartowski's quantisations (``bartowski/Qwen2.5-Math-1.5B-Instruct-GGUF``).

A pull lists the repository once (file names, sizes and the LFS sha256 of each
file, at the current commit), then downloads the file -- or every part of a
split model (``NAME-00001-of-00002.gguf``...) -- from the hub's resolve endpoint,
pinned to that commit, into ``FILE.<sha256[:12]>.partial`` in the models dir.
A ``.partial`` file is never taken for a model; an interrupted download is
resumed with an HTTP Range request by the next pull (and within a pull, when the
connection drops). The sha256 is computed while the bytes arrive and must equal
the hub's, else the download is deleted. Only then are the files renamed into
place (a split model's first part last) and stamped ``.verified``. The parts of
a split model stay separate files, as the hub names them: llama.cpp loads a
split model from its first part (see :func:`qwenchat.models.split_parts`).

``$HF_ENDPOINT`` is read at each pull (huggingface_hub reads it once, at import)
and ``$HF_TOKEN`` or a stored hub login is sent for gated repositories.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from qwenchat.errors import DownloadError, ModelError
from qwenchat.models.files import (
    CHUNK,
    PARTIAL_SUFFIX,
    check_free_space,
    verify_file,
    write_stamp,
)
from qwenchat.models.library import SPLIT_RE, find_model, model_files, model_name

DEFAULT_QUANT = "q4_k_m"
_API_TIMEOUT_S = 30.0

Progress = Callable[[str, int, int], None]
"""Called with (file name, bytes on disk so far, file size) while downloading."""


@dataclass(frozen=True)
class Family:
    """A model family's GGUF repositories. ``repo`` and ``stem`` (a file name without
    ``.gguf``) take ``{size}``/``{SIZE}`` (``1.5b``/``1.5B``) and ``{quant}``/``{QUANT}``
    (``q4_k_m``/``Q4_K_M``), spelled as the repository does; file names match in any case."""

    repo: str
    stem: str
    sizes: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "qwen2.5": Family(
        repo="Qwen/Qwen2.5-{SIZE}-Instruct-GGUF",
        stem="qwen2.5-{size}-instruct-{quant}",
        sizes=("0.5b", "1.5b", "3b", "7b", "14b", "32b", "72b"),
    ),
    "qwen2.5-coder": Family(
        repo="Qwen/Qwen2.5-Coder-{SIZE}-Instruct-GGUF",
        stem="qwen2.5-coder-{size}-instruct-{quant}",
        sizes=("0.5b", "1.5b", "3b", "7b", "14b", "32b"),
    ),
    # Not from Qwen: there is no official Qwen2.5-Math GGUF repository.
    "qwen2.5-math": Family(
        repo="bartowski/Qwen2.5-Math-{SIZE}-Instruct-GGUF",
        stem="Qwen2.5-Math-{SIZE}-Instruct-{QUANT}",
        sizes=("1.5b", "7b"),
    ),
}

_QUANT_RE = re.compile(r"[A-Za-z0-9_]+")
_REPO_RE = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class Wanted:
    """What a name asks for in one repository: an exact ``filename``, a file ``stem``
    (any case), or else the file whose name ends with ``quant``."""

    name: str
    repo_id: str
    filename: str | None = None
    stem: str | None = None
    quant: str | None = None


@dataclass(frozen=True)
class HubFile:
    """A file in a hub repository: its path there, size and LFS sha256 (empty if not LFS)."""

    path: str
    size: int
    sha256: str

    @property
    def basename(self) -> str:
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class Pulled:
    """The result of a pull: the model's (first) file and whether anything was downloaded."""

    path: Path
    files: tuple[Path, ...]
    size: int
    downloaded: bool

    @property
    def name(self) -> str:
        return model_name(self.path)


# --- names -----------------------------------------------------------------------


def parse_name(name: str) -> Wanted:
    """Turn an alias or ``OWNER/REPO[:FILE|:QUANT]`` into what to look for; no network.

    Raises :class:`ModelError` (one line) for an unknown alias, size or malformed name.
    """
    name = name.strip()
    if "/" in name:
        return _parse_repo_name(name)
    family_name, _, rest = name.partition(":")
    family = FAMILIES.get(family_name.lower())
    if family is None:
        raise ModelError(f"unknown model name '{name}'; {_names_hint()}")
    size, _, quant = rest.lower().partition("-")
    if size not in family.sizes:
        sizes = ", ".join(f"{family_name.lower()}:{s}" for s in family.sizes)
        given = f"size '{size}'" if size else "no size"
        raise ModelError(f"'{name}' has {given}; {family_name.lower()} comes as {sizes}")
    quant = quant or DEFAULT_QUANT
    if not _QUANT_RE.fullmatch(quant):
        raise ModelError(f"'{name}': '{quant}' is not a quantisation name such as q4_k_m")
    spelled = {"size": size, "SIZE": size.upper(), "quant": quant, "QUANT": quant.upper()}
    return Wanted(
        name=name, repo_id=family.repo.format(**spelled), stem=family.stem.format(**spelled)
    )


def _parse_repo_name(name: str) -> Wanted:
    repo_id, _, rest = name.partition(":")
    if not _REPO_RE.fullmatch(repo_id):
        raise ModelError(f"'{name}' is not OWNER/REPO:FILE.gguf; {_names_hint()}")
    if rest.lower().endswith(".gguf"):
        return Wanted(name=name, repo_id=repo_id, filename=rest)
    quant = rest or DEFAULT_QUANT
    if not _QUANT_RE.fullmatch(quant):
        raise ModelError(f"'{name}': give OWNER/REPO:FILE.gguf or OWNER/REPO:QUANT (e.g. Q4_K_M)")
    return Wanted(name=name, repo_id=repo_id, quant=quant)


def _names_hint() -> str:
    aliases = ", ".join(f"{family}:{spec.sizes[0]}" for family, spec in FAMILIES.items())
    return (
        f"use an alias ({aliases}, or SIZE-QUANT such as qwen2.5:7b-q8_0) or OWNER/REPO:FILE.gguf"
    )


def local_stem(name: str) -> str | None:
    """The model name a pull of ``name`` gives, when that is known without the network."""
    try:
        wanted = parse_name(name)
    except ModelError:
        return None
    if wanted.filename is not None:
        return model_name(Path(PurePosixPath(wanted.filename).name))
    return wanted.stem


def find_local(name: str, models_dir: Path) -> Path:
    """The local model ``name`` stands for: a file path, a model name (or a unique
    prefix) in ``models_dir``, or an alias / ``OWNER/REPO:FILE`` already pulled there.

    Raises :class:`ModelError` (one line) when there is none.
    """
    try:
        return find_model(name, models_dir)
    except ModelError:
        stem = local_stem(name)
        if stem is None:
            raise
    for path in model_files(models_dir):
        if model_name(path).lower() == stem.lower():
            return path
    raise ModelError(f"model '{name}' is not in {models_dir}; run: qwenchat models pull {name}")


# --- choosing the files --------------------------------------------------------------


def choose_files(wanted: Wanted, listing: list[HubFile]) -> list[HubFile]:
    """The file, or all parts of the split model, that ``wanted`` names in ``listing``.

    Raises :class:`ModelError` (one line) when there is no such file, when a quant
    matches several models, or when parts of a split model are missing.
    """
    groups: dict[str, list[HubFile]] = {}
    for file in listing:
        if file.basename.lower().endswith(".gguf"):
            groups.setdefault(_group_key(file.basename), []).append(file)
    if wanted.filename is not None:
        wanted_name = wanted.filename.lower()
        keys = [
            key
            for key, files in groups.items()
            if any(wanted_name in (f.path.lower(), f.basename.lower()) for f in files)
        ]
    elif wanted.stem is not None:
        keys = [key for key in groups if key == wanted.stem.lower()]
    else:
        quant = re.escape((wanted.quant or DEFAULT_QUANT).lower())
        keys = [key for key in groups if re.search(rf"[-._]{quant}$", key)]
    if not keys:
        raise ModelError(f"{_not_found(wanted)} in {wanted.repo_id}; {_available(groups)}")
    if len(keys) > 1:
        names = ", ".join(sorted(keys))
        raise ModelError(
            f"'{wanted.name}' matches several models in {wanted.repo_id}: {names}; "
            "give OWNER/REPO:FILE.gguf"
        )
    return _complete_parts(wanted, groups[keys[0]])


def _group_key(basename: str) -> str:
    match = SPLIT_RE.match(basename)
    base = match["base"] if match else basename[: -len(".gguf")]
    return base.lower()


def _not_found(wanted: Wanted) -> str:
    if wanted.filename is not None:
        return f"no file {wanted.filename}"
    if wanted.stem is not None:
        return f"no {wanted.stem}.gguf"
    return f"no .gguf file of quantisation {wanted.quant}"


def _available(groups: dict[str, list[HubFile]]) -> str:
    if not groups:
        return "it has no .gguf files"
    names = sorted({model_name(Path(files[0].basename)) for files in groups.values()})
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"it has: {shown}"


def _complete_parts(wanted: Wanted, files: list[HubFile]) -> list[HubFile]:
    """One plain file, or the parts 1..N of one split model, in order."""
    plain = [f for f in files if not SPLIT_RE.match(f.basename)]
    if plain:
        return plain[:1]
    numbered = {}
    for file in files:
        match = SPLIT_RE.match(file.basename)
        assert match is not None
        numbered[(int(match["no"]), int(match["count"]))] = file
    count = max(total for _, total in numbered)
    parts = [numbered.get((no, count)) for no in range(1, count + 1)]
    if any(part is None for part in parts):
        have = sum(part is not None for part in parts)
        raise ModelError(
            f"{wanted.repo_id} lists only {have} of the {count} parts of "
            f"{model_name(Path(files[0].basename))}; it cannot be pulled"
        )
    return [part for part in parts if part is not None]


# --- the hub -------------------------------------------------------------------------


def hub_endpoint() -> str:
    """The hub's URL: ``$HF_ENDPOINT`` as it is now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def list_repo(wanted: Wanted, endpoint: str) -> tuple[str, list[HubFile]]:
    """The repository's current commit and its files, with sizes and LFS sha256."""
    from huggingface_hub import HfApi

    from qwenchat import __version__

    api = HfApi(endpoint=endpoint, library_name="qwenchat", library_version=__version__)
    info = api.model_info(wanted.repo_id, files_metadata=True, timeout=_API_TIMEOUT_S)
    files = [
        HubFile(
            path=s.rfilename,
            size=s.lfs.size if s.lfs else (s.size or 0),
            sha256=s.lfs.sha256 if s.lfs else "",
        )
        for s in info.siblings or []
    ]
    return info.sha or "main", files


def pull(name: str, models_dir: Path, progress: Progress | None = None) -> Pulled:
    """Download the model ``name`` (see :func:`parse_name`) into ``models_dir``.

    A file already there with the hub's sha256 is kept (``downloaded=False``).
    Raises :class:`ModelError` (exit 2: bad name, no such repository or file, no
    disk space, unwritable dir) or :class:`DownloadError` (exit 1: the network,
    the server, a checksum mismatch), each one line.
    """
    wanted = parse_name(name)
    endpoint = hub_endpoint()
    with _hub_errors(wanted, endpoint), _quiet_hub_logs():
        commit, listing = list_repo(wanted, endpoint)
        files = choose_files(wanted, listing)
        for file in files:
            if not file.sha256:
                raise DownloadError(
                    f"the hub gives no sha256 for {file.path} in {wanted.repo_id}, "
                    "so it cannot be checked; download it by hand"
                )
        try:
            models_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelError(f"cannot create {models_dir}: {exc.strerror or exc}") from None
        targets = [models_dir / file.basename for file in files]
        todo = [
            (file, target)
            for file, target in zip(files, targets, strict=True)
            if not verify_file(target, file.sha256, file.size)
        ]
        total = sum(file.size for file in files)
        if not todo:
            return Pulled(targets[0], tuple(targets), total, downloaded=False)
        needed = sum(file.size - _partial_size(_partial_path(t, file)) for file, t in todo)
        check_free_space(models_dir, needed, model_name(targets[0]))
        partials = [
            _download(wanted, commit, endpoint, file, target, progress) for file, target in todo
        ]
        # Into place only once every part is good; the first part, which stands for
        # the model, last.
        for (file, target), partial in reversed(list(zip(todo, partials, strict=True))):
            _move_into_place(partial, target)
            write_stamp(target, file.sha256, file.size)
    return Pulled(targets[0], tuple(targets), total, downloaded=True)


def _move_into_place(partial: Path, target: Path) -> None:
    try:
        os.replace(partial, target)
    except OSError as exc:
        raise ModelError(f"cannot write {target}: {exc.strerror or exc}") from None


def _partial_path(target: Path, file: HubFile) -> Path:
    return target.with_name(f"{target.name}.{file.sha256[:12]}{PARTIAL_SUFFIX}")


def _partial_size(partial: Path) -> int:
    try:
        return partial.stat().st_size
    except OSError:
        return 0


def _remove_stale_partials(target: Path, keep: Path) -> None:
    """Downloads of other versions of ``target`` cannot be resumed: delete them."""
    pattern = re.compile(re.escape(target.name) + r"\.[0-9a-f]{12}" + re.escape(PARTIAL_SUFFIX))
    for path in target.parent.iterdir():
        if path != keep and pattern.fullmatch(path.name):
            with contextlib.suppress(OSError):
                path.unlink()


def _download(
    wanted: Wanted,
    commit: str,
    endpoint: str,
    file: HubFile,
    target: Path,
    progress: Progress | None,
) -> Path:
    """Download ``file`` into its ``.partial`` next to ``target``, resuming what is
    there; return the partial file once its sha256 is checked."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    from qwenchat import __version__

    partial = _partial_path(target, file)
    _remove_stale_partials(target, keep=partial)
    try:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ModelError(f"cannot write {partial}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "r+b") as handle:
        _lock(handle, target)

        def report(done: int) -> None:
            if progress is not None:
                progress(target.name, done, file.size)

        writer = _HashingWriter(handle, partial, report)
        if writer.size > file.size:  # not a prefix of this file: start again
            writer.seek(0)
            writer.truncate()
        url = hf_hub_url(wanted.repo_id, file.path, revision=commit, endpoint=endpoint)
        http_get(
            url,
            writer,  # type: ignore[arg-type]
            resume_size=writer.size,
            headers=build_hf_headers(library_name="qwenchat", library_version=__version__),
            expected_size=file.size,
            tqdm_class=_NoBar,  # type: ignore[arg-type]
        )
        handle.flush()
        os.fsync(handle.fileno())
        digest = writer.hexdigest()
    if digest != file.sha256:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{file.basename} from {wanted.repo_id} failed its checksum (sha256 {digest}, "
            f"the hub says {file.sha256}); the download was deleted, run the pull again"
        )
    return partial


def _lock(handle: BinaryIO, target: Path) -> None:
    """Hold an exclusive lock on the partial file, so two pulls never write it at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DownloadError(
            f"another qwenchat is downloading {target.name} into {target.parent}; "
            "wait for it to finish"
        ) from None


class _HashingWriter:
    """The partial file as huggingface_hub's ``http_get`` writes it: appends are hashed
    and reported; a truncation (a server that ignored the Range) re-hashes what is left."""

    def __init__(self, handle: BinaryIO, path: Path, report: Callable[[int], None]) -> None:
        self._handle, self._path, self._report = handle, path, report
        self._hash_from_start(os.fstat(handle.fileno()).st_size)

    def _hash_from_start(self, size: int) -> None:
        self._digest, self.size = hashlib.sha256(), 0
        self._handle.seek(0)
        while self.size < size and (chunk := self._handle.read(min(CHUNK, size - self.size))):
            self._digest.update(chunk)
            self.size += len(chunk)
        self._handle.seek(self.size)
        self._report(self.size)

    def write(self, data: bytes) -> int:
        try:
            written = self._handle.write(data)
        except OSError as exc:
            raise ModelError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        self._digest.update(data)
        self.size += len(data)
        self._report(self.size)
        return written

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        end = self._handle.truncate(size)
        self._handle.flush()
        self._hash_from_start(end)
        return end

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _NoBar:
    """Stands in for huggingface_hub's tqdm bar: progress goes through :class:`_HashingWriter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        pass


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """huggingface_hub logs retries as multi-line warnings on stderr: keep only errors."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _hub_errors(wanted: Wanted, endpoint: str) -> Iterator[None]:
    """Turn huggingface_hub's and the network's errors into one-line qwenchat errors."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = wanted.repo_id
    try:
        yield
    except GatedRepoError:
        raise ModelError(
            f"{repo} is gated: accept its terms on the hub, then set HF_TOKEN or run hf auth login"
        ) from None
    except RepositoryNotFoundError:
        raise ModelError(
            f"no repository {repo} on {endpoint} (or it is private); check the name"
        ) from None
    except (RevisionNotFoundError, RemoteEntryNotFoundError):
        raise DownloadError(
            f"a file of {repo} went missing on {endpoint} during the pull; run it again"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "an error"
        raise DownloadError(f"{endpoint} answered {status} for {repo}; try again later") from None
    except OfflineModeIsEnabled:
        raise DownloadError("HF_HUB_OFFLINE is set: unset it to download models") from None
    except httpx2.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DownloadError(
            f"cannot download from {endpoint} ({reason}); check the network or HF_ENDPOINT, "
            "then run the pull again to resume"
        ) from None
    except OSError as exc:  # huggingface_hub's size check: the server sent too few bytes
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DownloadError(
            f"download from {endpoint} failed ({reason}); run the pull again"
        ) from None
