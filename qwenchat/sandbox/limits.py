"""What a sandbox may use: its layer and resource limits (pure data, cheap to import).

Kept apart from the launcher so the config can validate ``[sandbox]`` without
importing the sandbox machinery.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LayerName = Literal["bubblewrap", "rlimits", "none"]


class Limits(BaseModel):
    """Resource limits of one sandbox, applied to every process in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_mb: int = Field(
        default=1024,
        ge=128,
        description="memory of the whole sandbox (a cgroup, where one can be made) and"
        " address space of each process",
    )
    cpu_s: int = Field(default=600, ge=1, description="CPU time per process over its life")
    file_mb: int = Field(default=16, ge=1, description="size of any one written file")
    disk_mb: int = Field(default=64, ge=1, description="size of /tmp and of the work dir (bwrap)")
    open_files: int = Field(default=64, ge=16, description="open file descriptors per process")
    processes: int = Field(
        default=32, ge=2, description="processes and threads of the code (a cgroup and a uid)"
    )
    max_output_chars: int = Field(
        default=8000, ge=100, description="head and tail kept of long output"
    )
