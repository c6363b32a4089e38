"""Tools: Python functions the model can call.

Write a typed function with a Google-style docstring; optionally mark it with
:func:`tool` to set its name, safety, timeout or display name.
:func:`load_tools` collects the built-in tools and those in tool directories into
a :class:`ToolRegistry`, whose :meth:`~ToolRegistry.specs` go to the chat template.
"""

from qwenchat.tools.loader import LoadResult, default_tool_dirs, load_tools
from qwenchat.tools.registry import (
    Tool,
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    ToolFailed,
    ToolRegistry,
    ToolRunError,
    tool,
    tool_from_function,
)

__all__ = [
    "LoadResult",
    "Tool",
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolError",
    "ToolFailed",
    "ToolRegistry",
    "ToolRunError",
    "default_tool_dirs",
    "load_tools",
    "tool",
    "tool_from_function",
]
