"""Safe edge conditions: a small expression language checked against an AST whitelist.

Condition strings such as ``"context.get('score') >= 80"`` are parsed once, when the
definition is built, and compiled into a tree of closures.  Nothing is ever passed to
``eval``/``exec``: an expression that uses any syntax outside the whitelist (attribute access
other than ``context.get`` and a few string methods, lambdas, comprehensions, imports, dunder
names, ``**``...) is rejected with an ``UnsafeExpressionError`` naming the construct.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from flowstar.model.errors import StepExecutionError, UnsafeExpressionError

__all__ = ["Condition", "ConditionEvaluationError", "compile_condition"]

MAX_EXPRESSION_LENGTH = 2000
# A sequence repeated to more than this many items is refused: "'x' * 10**9" would
# otherwise exhaust memory inside the worker.
MAX_REPEAT = 10_000
# No string, list or tuple an expression builds (by repetition or concatenation) may be
# longer than this: "('x' * 10000) * 10000" would otherwise build 100 MB.
MAX_SEQUENCE_LENGTH = 100_000
# Expressions nest at most this deep: compiling and evaluating recurse once per level, so a
# deeper one ("-" * 1990 + "1") would exhaust Python's stack instead of being refused.
MAX_NESTING = 50

_Eval = Callable[[Mapping[str, Any]], Any]


class ConditionEvaluationError(StepExecutionError):
    """A well-formed condition raised while evaluated against the context."""


def _mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            if count > MAX_REPEAT:
                raise ConditionEvaluationError(f"repetition count {count} exceeds {MAX_REPEAT}")
            if len(seq) * count > MAX_SEQUENCE_LENGTH:
                raise ConditionEvaluationError(
                    f"repetition would build {len(seq) * count} items; the limit is {MAX_SEQUENCE_LENGTH}"
                )
    return left * right


def _add(left: Any, right: Any) -> Any:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if sequences and len(left) + len(right) > MAX_SEQUENCE_LENGTH:
        raise ConditionEvaluationError(
            f"concatenation would build {len(left) + len(right)} items; the limit is {MAX_SEQUENCE_LENGTH}"
        )
    return left + right


def _mod(left: Any, right: Any) -> Any:
    # "'%999999999s' % x" allocates a gigabyte: %-formatting is not part of the language.
    if isinstance(left, str | bytes):
        raise ConditionEvaluationError("string formatting with % is not allowed")
    return left % right


def _sum(values: Any, start: Any = 0) -> Any:
    # sum(lists, []) concatenates in quadratic time; only numbers are summed.
    if not isinstance(start, int | float):
        raise ConditionEvaluationError("sum() adds numbers only")
    return sum(values, start)


_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "any": any,
    "all": all,
    "sum": _sum,
}
_STR_METHODS = frozenset({"lower", "upper", "strip", "startswith", "endswith"})

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0

    def reject(self, node: ast.AST, what: str) -> UnsafeExpressionError:
        col = getattr(node, "col_offset", 0)
        return UnsafeExpressionError(f"unsafe or unsupported condition {self.source!r}: {what} (at column {col})")

    def compile(self, node: ast.AST) -> _Eval:
        """A function of the data for ``node``; ``UnsafeExpressionError`` for what is not allowed."""
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.reject(node, f"{type(node).__name__} expressions are not allowed")
        if self.depth >= MAX_NESTING:
            raise self.reject(node, f"nested more than {MAX_NESTING} levels deep")
        self.depth += 1
        try:
            return handler(self, node)
        finally:
            self.depth -= 1

    def _constant(self, node: ast.Constant) -> _Eval:
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise self.reject(node, f"constant of type {type(node.value).__name__}")
        value = node.value
        return lambda _data: value

    def _name(self, node: ast.Name) -> _Eval:
        if node.id == "context":
            raise self.reject(node, "'context' may only be used as context.get(...) or context[...]")
        raise self.reject(node, f"unknown name {node.id!r}")

    def _bool_op(self, node: ast.BoolOp) -> _Eval:
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda data: _and(parts, data)
        return lambda data: _or(parts, data)

    def _unary_op(self, node: ast.UnaryOp) -> _Eval:
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise self.reject(node, f"operator {type(node.op).__name__}")
        operand = self.compile(node.operand)
        return lambda data: unary(operand(data))

    def _bin_op(self, node: ast.BinOp) -> _Eval:
        binop = _BINOPS.get(type(node.op))
        if binop is None:
            raise self.reject(node, f"operator {type(node.op).__name__}")
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda data: binop(left(data), right(data))

    def _if_exp(self, node: ast.IfExp) -> _Eval:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda data: body(data) if test(data) else orelse(data)

    def _sequence(self, node: ast.List | ast.Tuple | ast.Set) -> _Eval:
        items = [self.compile(e) for e in node.elts]
        kind: Callable[[Any], Any] = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        return lambda data: kind(item(data) for item in items)

    def _dict(self, node: ast.Dict) -> _Eval:
        if any(k is None for k in node.keys):
            raise self.reject(node, "dict unpacking")
        keys = [self.compile(k) for k in node.keys if k is not None]
        values = [self.compile(v) for v in node.values]
        return lambda data: {k(data): v(data) for k, v in zip(keys, values, strict=True)}

    def _compare(self, node: ast.Compare) -> _Eval:
        left = self.compile(node.left)
        ops: list[tuple[Callable[[Any, Any], Any], _Eval]] = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise self.reject(node, f"comparison {type(op).__name__}")
            ops.append((fn, self.compile(comparator)))

        def evaluate(data: Mapping[str, Any]) -> Any:
            current = left(data)
            for fn, right in ops:
                value = right(data)
                if not fn(current, value):
                    return False
                current = value
            return True

        return evaluate

    def _subscript(self, node: ast.Subscript) -> _Eval:
        if isinstance(node.slice, ast.Slice):
            raise self.reject(node, "slices")
        index = self.compile(node.slice)
        if isinstance(node.value, ast.Name) and node.value.id == "context":
            return lambda data: data[index(data)]
        target = self.compile(node.value)
        return lambda data: target(data)[index(data)]

    def _call(self, node: ast.Call) -> _Eval:
        if node.keywords:
            raise self.reject(node, "keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.reject(node, "argument unpacking")
        args = [self.compile(a) for a in node.args]
        func = node.func
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id == "context":
                if func.attr != "get" or not 1 <= len(args) <= 2:
                    raise self.reject(node, f"context.{func.attr}(...) (only context.get(key[, default]))")
                key = args[0]
                default = args[1] if len(args) == 2 else (lambda _data: None)
                return lambda data: data.get(key(data), default(data))
            if func.attr not in _STR_METHODS:
                raise self.reject(node, f"method .{func.attr}()")
            target, name = self.compile(func.value), func.attr

            def call_method(data: Mapping[str, Any]) -> Any:
                obj = target(data)
                if not isinstance(obj, str):
                    raise ConditionEvaluationError(f".{name}() is only allowed on strings")
                return getattr(obj, name)(*(a(data) for a in args))

            return call_method
        if isinstance(func, ast.Name) and func.id in _BUILTINS:
            builtin = _BUILTINS[func.id]
            return lambda data: builtin(*(a(data) for a in args))
        raise self.reject(node, f"call of {ast.unparse(func)!r}")


# One method of ``_Compiler`` per allowed node type.
_HANDLERS: dict[type[ast.AST], Callable[[_Compiler, Any], _Eval]] = {
    ast.Constant: _Compiler._constant,
    ast.Name: _Compiler._name,
    ast.BoolOp: _Compiler._bool_op,
    ast.UnaryOp: _Compiler._unary_op,
    ast.BinOp: _Compiler._bin_op,
    ast.Compare: _Compiler._compare,
    ast.IfExp: _Compiler._if_exp,
    ast.Subscript: _Compiler._subscript,
    ast.Call: _Compiler._call,
    ast.List: _Compiler._sequence,
    ast.Tuple: _Compiler._sequence,
    ast.Set: _Compiler._sequence,
    ast.Dict: _Compiler._dict,
}


def _and(parts: list[_Eval], data: Mapping[str, Any]) -> Any:
    result: Any = True
    for part in parts:
        result = part(data)
        if not result:
            return result
    return result


def _or(parts: list[_Eval], data: Mapping[str, Any]) -> Any:
    result: Any = False
    for part in parts:
        result = part(data)
        if result:
            return result
    return result


class Condition:
    """A compiled, safe condition expression.

    Calling it with the context data returns the expression's truth value.

    Raises:
        UnsafeExpressionError: (at construction) the text is malformed or uses syntax
            outside the whitelist.
    """

    __slots__ = ("_fn", "source")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise UnsafeExpressionError("a condition must be a non-empty string")
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise UnsafeExpressionError(
                f"condition is {len(source)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
            )
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise UnsafeExpressionError(f"malformed condition {source!r}: {exc.msg}") from exc
        except UnicodeEncodeError as exc:  # a lone surrogate cannot reach the parser
            raise UnsafeExpressionError(f"malformed condition {source!r}: {exc.reason}") from exc
        self.source = source
        self._fn = _Compiler(source).compile(tree.body)

    def __call__(self, data: Mapping[str, Any]) -> bool:
        try:
            return bool(self._fn(data))
        except ConditionEvaluationError:
            raise
        except Exception as exc:
            raise ConditionEvaluationError(f"condition {self.source!r} failed: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def compile_condition(source: str) -> Condition:
    """Compile ``source`` into a ``Condition`` (see the module docs for the grammar)."""
    return Condition(source)
