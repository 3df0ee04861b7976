"""The LangGraph boundary: one import point, a helpful error without the extra, wire constants.

LangGraph keeps the names of its configuration keys and channels in a private
module; the few this adapter reads are spelled out here (a test checks them
against the installed LangGraph) rather than imported from ``langgraph._internal``.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CONF",
    "CONFIG_KEY_CHECKPOINT_NS",
    "CONFIG_KEY_SEND",
    "CONFIG_KEY_TASK_ID",
    "CONFIG_KEY_THREAD_ID",
    "END",
    "INSTALL_HINT",
    "NS_END",
    "NS_SEP",
    "PUSH",
    "RESERVED_CHANNELS",
    "START",
    "TASKS",
    "langgraph_version",
    "require_langgraph",
    "task_path_str",
]

INSTALL_HINT: Final = 'pip install "codon-sdk[langgraph]"'

CONF: Final = "configurable"
CONFIG_KEY_SEND: Final = "__pregel_send"
CONFIG_KEY_TASK_ID: Final = "__pregel_task_id"
CONFIG_KEY_THREAD_ID: Final = "thread_id"
CONFIG_KEY_CHECKPOINT_NS: Final = "checkpoint_ns"
TASKS: Final = "__pregel_tasks"
PUSH: Final = "__pregel_push"
NS_SEP: Final = "|"
NS_END: Final = ":"
START: Final = "__start__"
END: Final = "__end__"
# Channels a task writes that are bookkeeping, not state: never a trigger of a node.
RESERVED_CHANNELS: Final = frozenset(
    {
        "__no_writes__",
        "__pregel_push",
        "__resume__",
        "__interrupt__",
        "__return__",
        "__error__",
        "__error_source_node__",
        TASKS,
    }
)


def require_langgraph() -> Any:
    """Import and return the ``langgraph`` package, or explain how to install it."""
    try:
        import langgraph
        import langgraph.graph
        import langgraph.pregel
    except ImportError as err:
        raise ImportError(
            "the Codon LangGraph integration (codon.instrumentation.langgraph) needs the "
            f"LangGraph package, which is not installed: {INSTALL_HINT}"
        ) from err
    return langgraph


def langgraph_version() -> str:
    """The installed LangGraph version ("unknown" if its metadata cannot be read)."""
    from importlib import metadata

    try:
        return metadata.version("langgraph")
    except metadata.PackageNotFoundError:
        return "unknown"


def task_path_str(path: Any) -> str:
    """A task path as text, in LangGraph's own sort order (numbers zero-padded)."""
    if isinstance(path, (tuple, list)):
        return "~" + ", ".join(task_path_str(part) for part in path)
    if isinstance(path, int):
        return f"{path:010d}"
    return str(path)
