"""Models: the models directory (:mod:`.library`), the two bundled Qwen2.5-Coder models
(:mod:`.bundled`), files on disk and their stamps (:mod:`.files`), the GGUF header reader
(:mod:`.gguf`) and the Hugging Face hub (:mod:`.hub`, ``qwenchat models pull``).

The names most callers need are here; the modules have the rest.
"""

from qwenchat.models.bundled import (
    EVAL_MODEL,
    TEST_MODEL,
    BundledModel,
    Progress,
    assemble,
    find_parts,
    is_installed,
)
from qwenchat.models.files import (
    PARTIAL_SUFFIX,
    STAMP_SUFFIX,
    check_free_space,
    file_sha256,
    stamp_matches,
    stamp_path,
    verify_file,
    write_stamp,
)
from qwenchat.models.library import (
    QWEN25_TEMPLATE_SHA256,
    QWEN_ARCHITECTURE,
    SPLIT_RE,
    ModelInfo,
    check_model_file,
    describe,
    find_model,
    list_models,
    model_files,
    model_name,
    model_parts,
    remove_model,
    resolve_model,
    split_parts,
)

__all__ = [
    "EVAL_MODEL",
    "PARTIAL_SUFFIX",
    "QWEN25_TEMPLATE_SHA256",
    "QWEN_ARCHITECTURE",
    "SPLIT_RE",
    "STAMP_SUFFIX",
    "TEST_MODEL",
    "BundledModel",
    "ModelInfo",
    "Progress",
    "assemble",
    "check_free_space",
    "check_model_file",
    "describe",
    "file_sha256",
    "find_model",
    "find_parts",
    "is_installed",
    "list_models",
    "model_files",
    "model_name",
    "model_parts",
    "remove_model",
    "resolve_model",
    "split_parts",
    "stamp_matches",
    "stamp_path",
    "verify_file",
    "write_stamp",
]
