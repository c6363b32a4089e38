"""The ``python`` tool: model-written code run in the conversation's sandbox.

Unlike the other built-in tools it is bound to a :class:`~qwenchat.sandbox.Sandbox`
(one per conversation, so variables persist between calls), and it is safe to run
without approval only when that sandbox is at full strength (bubblewrap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwenchat.tools.registry import Tool, ToolFailed, tool, tool_from_function

if TYPE_CHECKING:
    from qwenchat.sandbox import Sandbox

# The sandbox's own timeout ends a call first; this only bounds a wedged sandbox.
_TIMEOUT_MARGIN_S = 15.0


def python_tool(sandbox: Sandbox) -> Tool:
    """The ``python`` tool running code in ``sandbox``.

    Raises :class:`~qwenchat.sandbox.SandboxError` when no sandbox can run code here
    (and unsandboxed running is not allowed), so the tool is never offered in vain.
    """
    layer = sandbox.layer
    if not sandbox.can_run:
        from qwenchat.sandbox import SandboxError

        raise SandboxError(f"the python tool is off: no sandbox works here ({layer.reason})")

    @tool(
        safe=layer.strength == "full",
        timeout=sandbox.timeout + _TIMEOUT_MARGIN_S,
        display_name="Python",
    )
    def python(code: str) -> str:
        """Run Python code in a persistent, sandboxed interpreter and return what it prints.

        Use it for any calculation or data processing. Variables, functions and imports
        persist between calls, like notebook cells. math, fractions, numpy and sympy are
        available; there is no network. The value of the last line is shown, as in a
        notebook; print() anything else you need.

        Args:
            code: the Python code to run, e.g. 'print(987654321 * 123456789)'.
        """
        result = sandbox.run(code)
        if result.error is not None:  # a failed call: its report is the result, as is
            raise ToolFailed(result.report())
        return result.report()

    return tool_from_function(python)
