"""The models directory: finding, describing, naming and removing GGUF files.

Models are ``.gguf`` files, usually in the models directory
(:meth:`qwenchat.config.Settings.resolved_models_dir`). Models pulled from the Hugging
Face hub (:mod:`qwenchat.models.hub`) may be split GGUFs: ``NAME-00001-of-0000N.gguf``
and its sibling parts, which llama.cpp loads from the first part; the first part stands
for the model here and the other parts are hidden.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from pydantic import BaseModel

from qwenchat.errors import ModelError
from qwenchat.models.bundled import TEST_MODEL, assemble, is_installed
from qwenchat.models.files import PARTIAL_SUFFIX, stamp_path
from qwenchat.models.gguf import GGUFInfo, read_metadata
from qwenchat.paths import cache_dir

QWEN_ARCHITECTURE = "qwen2"
QWEN25_TEMPLATE_SHA256 = "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f"
"""The sha256 of the official Qwen2.5-Instruct chat template (UTF-8), the one the
official Qwen2.5 GGUFs carry; ``tests/data/qwen2.5-instruct-chat-template.jinja``."""
SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
"""llama.cpp's names for the files of a split model: ``NAME-00001-of-00003.gguf``."""


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
