"""Reading a step method's source: where it can go next, and whether it can wait.

The compiler uses this for two things: the definition's edges (the diagram) and the check,
when a workflow is registered, that a step that can wait has a step to go on with.  What
cannot be read (a target computed at run time, a method without source) is simply not
known: such a step is a node without those edges, and the runtime still fails the
instance with a clear error if a command names no step.

A command call is recognised by its name (``goto``, ``sleep``, ``wait.for_signal``, ...,
bare or as ``flow.goto``), never when awaited (``await asyncio.sleep`` is not a command).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StepFlow", "read_step"]

_NOT_COMMANDS = frozenset({"asyncio", "time", "trio", "anyio"})
_WAITS = frozenset({"for_signal", "for_event", "wait_for_event", "start_child"})
# Positions of ``on_timeout`` and ``next`` in each command's signature.
_POSITIONS: dict[str, dict[str, int]] = {
    "sleep": {"next": 1},
    "for_signal": {"on_timeout": 2, "next": 3},
    "for_event": {"on_timeout": 2, "next": 3},
    "wait_for_event": {"on_timeout": 2, "next": 3},
}


@dataclass
class StepFlow:
    """What a step method's source says about its way out.

    Attributes:
        readable: whether the source could be read and parsed.
        targets: step names it can go to (``goto``, ``next=``, ``on_timeout=``, ``sleep``'s
            ``next``), in the order they appear.
        loops: it can sleep and run again (a ``sleep`` without ``next``).
        default_next: it can wait without ``next=`` (it goes on with the next declared step).
        waits: it can wait for a signal or an event.
        ends: it can complete or fail the workflow.
        unread: command calls whose target is computed at run time.
    """

    readable: bool = True
    targets: list[str] = field(default_factory=list)
    loops: bool = False
    default_next: bool = False
    waits: bool = False
    ends: bool = False
    unread: int = 0

    def add(self, targets: list[str] | None) -> None:
        if targets is None:
            self.unread += 1
            return
        for target in targets:
            if target not in self.targets:
                self.targets.append(target)


def _parse(func: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _command_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id in _NOT_COMMANDS:
            return None
        if func.attr == "any":
            # ``wait.any(...)`` (or ``flow.wait.any``), never the builtin ``any``
            base = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            return "wait.any" if base == "wait" else None
        return func.attr
    return None


def _argument(call: ast.Call, name: str, position: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _target(node: ast.expr | None, self_name: str) -> list[str] | None:
    """The step names ``node`` can be: a name, ``self.step``, or either branch of a
    conditional expression of those; None when it is computed otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self_name:
        return [node.attr]
    if isinstance(node, ast.IfExp):
        body, orelse = _target(node.body, self_name), _target(node.orelse, self_name)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _is_none(node: ast.expr | None) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


class _Reader(ast.NodeVisitor):
    def __init__(self, self_name: str) -> None:
        self.flow = StepFlow()
        self.self_name = self_name

    def visit_Await(self, node: ast.Await) -> None:
        # An awaited call is a coroutine (asyncio.sleep, a client), never a command; its
        # arguments are still read.
        if isinstance(node.value, ast.Call):
            for child in (*node.value.args, *(k.value for k in node.value.keywords)):
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _command_name(node)
        if name == "goto":
            self.flow.add(_target(node.args[0] if node.args else _argument(node, "target", None), self.self_name))
        elif name == "sleep":
            self._sleep(node)
        elif name in _WAITS or name == "wait.any":
            self._wait(node, name)
            if name == "wait.any":
                # The waits inside name what to wait for; their way out is wait.any's.
                for keyword in node.keywords:
                    self.visit(keyword.value)
                return
        elif name in ("complete", "fail"):
            self.flow.ends = True
        self.generic_visit(node)

    def _sleep(self, node: ast.Call) -> None:
        following = _argument(node, "next", _POSITIONS["sleep"]["next"])
        if _is_none(following):
            self.flow.loops = True
        else:
            self.flow.add(_target(following, self.self_name))

    def _wait(self, node: ast.Call, name: str) -> None:
        self.flow.waits = True
        positions = _POSITIONS.get(name, {})
        following = _argument(node, "next", positions.get("next"))
        if _is_none(following):
            self.flow.default_next = True
        else:
            self.flow.add(_target(following, self.self_name))
        on_timeout = _argument(node, "on_timeout", positions.get("on_timeout"))
        if not _is_none(on_timeout):
            self.flow.add(_target(on_timeout, self.self_name))


def read_step(func: Callable[..., Any]) -> StepFlow:
    """What ``func``'s source says about where its step can go (see ``StepFlow``)."""
    node = _parse(func)
    if node is None:
        return StepFlow(readable=False)
    params = node.args.posonlyargs + node.args.args
    reader = _Reader(params[0].arg if params else "self")
    for statement in node.body:
        reader.visit(statement)
    return reader.flow
