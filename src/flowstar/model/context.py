"""The execution context a step reads and writes, and the JSON rule for the data it holds.

Writes are recorded as a diff so that parallel branches, each running on its own copy of the
context, can be merged into the instance's data when their outcomes are committed.

Context data is JSON data, the same on every engine: ``json_data`` is the one gate every value
passes (``context.set``, start data, form data, webhook payloads, step results).  It refuses
what a JSON column would silently change (NaN and infinities, bytes, sets, non-string keys,
arbitrary objects) and converts, at once, what has one JSON spelling (tuples to lists,
datetimes and UUIDs to strings, structs and dataclasses to objects).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID, uuid4

import msgspec

from flowstar.model.enums import StepStatus
from flowstar.model.errors import ContextSerializationError, ValidationError

if TYPE_CHECKING:
    from flowstar.model.state import HistoryEntry

__all__ = [
    "MAX_DEPTH",
    "StepExecution",
    "WorkflowContext",
    "json_data",
    "json_object",
    "step_context",
    "to_json_value",
]

MAX_DEPTH = 128
"""How deep one value may nest lists and objects (serde_json's default recursion limit).

A deeper value is refused with ``ValidationError`` before any encoder recurses into it.
"""

_MISSING: Any = object()
_encode = msgspec.json.encode
_decode = msgspec.json.decode
_UTC = _dt.UTC
_CONTAINERS = (list, dict)
# Integers of any size are JSON numbers every store keeps exactly; only Python's own limit on
# converting them to text (4300 digits) stops one.  Within these bounds (both precomputed: the
# fast paths compare, they do not build big numbers) no encoding is needed to know it is fine.
_INT_MAX = 1 << 63
_INT_MIN = -_INT_MAX
# Types with exactly one JSON spelling, which msgspec's encoder gives them.
_ONE_SPELLING = (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, UUID, Decimal)


class _Refused(Exception):
    """Internal: why and where a value is not JSON data (turned into the public error)."""

    def __init__(self, detail: str, path: str, *, depth: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.path = path
        self.depth = depth


def json_data(value: Any, what: str = "value") -> Any:
    """Return ``value`` as JSON data, exactly as every store will hand it back later.

    Plain JSON (``dict`` with ``str`` keys, ``list``, ``str``, ``int``, finite ``float``,
    ``bool``, ``None``) comes back as an equal copy; tuples become lists; datetimes, dates,
    times, timedeltas, UUIDs and decimals become their ISO/text form; enums their value;
    msgspec Structs and dataclasses objects.

    Args:
        value: the value to store.
        what: how error messages name the value, e.g. ``"context value for 'total'"``.

    Raises:
        ContextSerializationError: NaN or an infinity, bytes, a set, a non-string key, an
            integer of more than 4300 digits or any other object with no JSON form (the
            message names ``what`` and the path inside it).
        ValidationError: the value nests deeper than ``MAX_DEPTH`` levels.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
    elif kind is float and value - value == 0.0:  # finite (NaN and infinities give NaN)
        return value
    return _converted(value, what)


def _converted(value: Any, what: str) -> Any:
    """``json_data`` past its scalar fast path."""
    same = _unchanged(value, MAX_DEPTH)
    return same[1] if same is not None else _strict(value, what)


def _unchanged(value: Any, levels: int) -> tuple[bytes, Any] | None:
    """``value``'s encoding and decoded copy, if the copy is equal and nests at most ``levels``.

    Equal after the round trip means nothing was changed on the way (NaN became None, bytes
    a base64 string, a set a list are all unequal).  ``None`` sends the value to the strict
    check, which says what is wrong and where.
    """
    try:
        encoded = _encode(value)
        decoded = _decode(encoded)
        same = decoded == value
    except (TypeError, ValueError, msgspec.EncodeError, RecursionError):  # (comparing deep values recurses)
        return None
    if not same:
        return None
    # Each level takes at least two bytes and an opening bracket of its own (brackets inside
    # strings only add to the count): a value short or with few brackets needs no walk.
    if (
        len(encoded) >= 2 * (levels + 1)
        and encoded.count(b"[") + encoded.count(b"{") > levels
        and _deeper_than(decoded, levels)
    ):
        return None
    return encoded, decoded


def _deeper_than(data: Any, levels: int) -> bool:
    """Whether the JSON data ``data`` (lists, dicts, scalars) nests more than ``levels`` deep.

    Level by level, without recursion: each pass keeps the containers of the one before.
    """
    frontier = [data]
    for _ in range(levels):
        frontier = [
            item
            for container in frontier
            for item in (container.values() if type(container) is dict else container)
            if type(item) in _CONTAINERS
        ]
        if not frontier:
            return False
    return True


def _strict(value: Any, what: str) -> Any:
    try:
        _check(value, "", 1)
    except _Refused as refused:
        where = f" at {_shortened(refused.path)}" if refused.path else ""
        if refused.depth:
            raise ValidationError(f"{what} {refused.detail}{where}") from None
        raise ContextSerializationError(
            f"{what} is not JSON-serializable ({type(value).__name__}): {refused.detail}{where}"
        ) from None
    try:
        return _decode(_encode(value))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:  # e.g. an enum whose value has no JSON form
        raise ContextSerializationError(f"{what} is not JSON-serializable ({type(value).__name__}): {exc}") from exc


def _shortened(path: str, keep: int = 30) -> str:
    # A path into a deep value runs to hundreds of characters: its ends say where it is.
    return path if len(path) <= 2 * keep + 3 else f"{path[:keep]}...{path[-keep:]}"


def _check(value: Any, path: str, depth: int) -> None:
    """Raise ``_Refused`` unless ``value`` has exactly one JSON form; recursion bounded by depth."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):  # (one too long for text fails its encoding below)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a JSON number", path)
        return
    if isinstance(value, (dict, list, tuple, msgspec.Struct)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        if depth > MAX_DEPTH:
            raise _Refused(f"nests deeper than {MAX_DEPTH} levels", path, depth=True)
        for key, item in _members(value, path):
            _check(item, f"{path}[{key!r}]", depth + 1)
        return
    if isinstance(value, enum.Enum):
        _check(value.value, path, depth)
        return
    if isinstance(value, _ONE_SPELLING):
        return
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise _Refused("bytes have no JSON form (encode them yourself, e.g. as base64 text)", path)
    if isinstance(value, (set, frozenset)):
        raise _Refused("a set has no JSON form (store a sorted list)", path)
    raise _Refused(f"{type(value).__name__} has no JSON form", path)


def _members(value: Any, path: str) -> Sequence[tuple[Any, Any]]:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise _Refused(f"object keys must be strings, got {key!r}", path)
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, msgspec.Struct):
        return [(name, getattr(value, name)) for name in value.__struct_fields__]
    return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]


def json_object(payload: Any, what: str, max_bytes: int | None = None) -> dict[str, Any]:
    """Check a mapping entering through the API (start data, form data, a webhook payload).

    Args:
        payload: the mapping; each value must pass ``json_data``.
        what: how error messages name it, e.g. ``"form data"``.
        max_bytes: the largest JSON encoding accepted (``None`` or 0: no limit).

    Returns:
        A new dict of JSON data.

    Raises:
        ValidationError: ``payload`` is not a mapping, nests too deep, or is larger than
            ``max_bytes`` once encoded.
        ContextSerializationError: a key is not a string or a value is not JSON data (the
            message names the key).
    """
    if type(payload) is not dict and not isinstance(payload, Mapping):  # (an ABC check is slow)
        raise ValidationError(f"{what} must be a JSON object, got {type(payload).__name__}")
    for key in payload:
        if not isinstance(key, str):
            raise ContextSerializationError(f"{what}: keys must be strings, got {key!r}")
    if not payload:
        return {}
    data = payload if type(payload) is dict else dict(payload)
    # The object itself is one level more than each of its values may have.
    same = _unchanged(data, MAX_DEPTH + 1)
    if same is not None:
        encoded, converted = same[0], cast("dict[str, Any]", same[1])
    else:
        converted = {key: json_data(value, f"{what} {key!r}") for key, value in data.items()}
        encoded = _encode(converted)
    if max_bytes and len(encoded) > max_bytes:
        raise ValidationError(f"{what} is {len(encoded)} bytes; the limit is {max_bytes}")
    return converted


def to_json_value(key: str, value: Any) -> Any:
    """``json_data(value, f"context value for {key!r}")``: the value as stored under ``key``."""
    return json_data(value, f"context value for {key!r}")


@dataclasses.dataclass(slots=True)
class StepExecution:
    """A finished (or waiting) execution of one step, as shown in ``step_history``."""

    step_name: str
    status: StepStatus
    attempt: int = 1
    started_at: _dt.datetime | None = None
    completed_at: _dt.datetime | None = None
    error: str | None = None


_EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})
_new_object = object.__new__
_STEP_STATUS: dict[str, StepStatus] = {status.value: status for status in StepStatus}


def history_executions(entries: Sequence[HistoryEntry]) -> list[StepExecution]:
    """``step_history`` from an instance's history lines (oldest first)."""
    return [
        StepExecution(h.step, _STEP_STATUS.get(h.status) or StepStatus(h.status), h.attempt, None, h.at)
        for h in entries
    ]


# Names ``context.get`` answers from the instance when the data has no such key, as the
# reference documents' notification steps expect.
_RESERVED: dict[str, Callable[[WorkflowContext], Any]] = {
    "_workflow_name": lambda c: c.workflow_name,
    "_instance_id": lambda c: str(c.instance_id),
    "_current_step": lambda c: c.current_step,
    "_tenant_id": lambda c: c.tenant_id,
    "_user_id": lambda c: c.user_id,
}


class WorkflowContext:
    """Execution context passed between steps.

    ``data`` is the mutable workflow data; ``metadata`` is read-only.  Every ``set`` is also
    recorded in ``changes`` so the engine can commit exactly what the step wrote.

    Attributes:
        workflow_id: UUID of the workflow definition (derived from its name and version).
        instance_id: UUID of this instance.
        data: the workflow data (JSON values only).
        metadata: read-only metadata of the instance.
        current_step: the step being run.
        step_history: the step executions finished so far, oldest first (at most the last
            ``HISTORY_LIMIT``): name, status and attempt of each.
        started_at: when the instance started.
        user_id: who acts: the user who completed the human task this step follows, else
            the user who started the instance.
        tenant_id: the instance's tenant.
        workflow_name: the definition's name.
        changes: what this step wrote, by key.
    """

    __slots__ = (
        "_history",
        "_history_entries",
        "changes",
        "current_step",
        "data",
        "instance_id",
        "metadata",
        "started_at",
        "tenant_id",
        "user_id",
        "workflow_id",
        "workflow_name",
    )

    workflow_id: UUID
    instance_id: UUID
    data: dict[str, Any]
    metadata: Mapping[str, Any]
    current_step: str
    started_at: _dt.datetime
    user_id: str | None
    tenant_id: str | None
    workflow_name: str | None
    changes: dict[str, Any]
    _history: list[StepExecution] | None
    _history_entries: Sequence[HistoryEntry]

    def __init__(  # noqa: PLR0917 - the documented fields, in the reference API's order
        self,
        workflow_id: UUID | None = None,
        instance_id: UUID | None = None,
        data: dict[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        current_step: str = "",
        step_history: list[StepExecution] | None = None,
        started_at: _dt.datetime | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        changes: dict[str, Any] | None = None,
        *,
        workflow_name: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id if workflow_id is not None else uuid4()
        self.instance_id = instance_id if instance_id is not None else uuid4()
        self.data = data if data is not None else {}
        self.metadata = MappingProxyType(dict(metadata)) if metadata else _EMPTY_METADATA
        self.current_step = current_step
        self._history = step_history if step_history is not None else []
        self._history_entries = ()
        self.started_at = started_at if started_at is not None else _dt.datetime.now(_UTC)
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.workflow_name = workflow_name
        self.changes = changes if changes is not None else {}

    @property
    def step_history(self) -> list[StepExecution]:
        """The step executions finished so far, oldest first."""
        history = self._history
        if history is None:
            # Built on first use: most steps never look, and the engine makes one context per step.
            history = self._history = history_executions(self._history_entries)
        return history

    @step_history.setter
    def step_history(self, value: list[StepExecution]) -> None:
        self._history = value

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``data[key]``, or ``default`` when the key is absent.

        ``"_workflow_name"``, ``"_instance_id"`` (as a string), ``"_current_step"``,
        ``"_tenant_id"`` and ``"_user_id"`` read the instance's own values unless the data
        holds such a key.
        """
        value = self.data.get(key, _MISSING)
        if value is not _MISSING:
            return value
        reserved = _RESERVED.get(key) if type(key) is str and key[:1] == "_" else None
        return default if reserved is None else reserved(self)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, as JSON data (see ``json_data``).

        Raises:
            ContextSerializationError: the key is not a string or the value is not JSON data
                (NaN, bytes, a set, ...). Nothing is written in that case.
            ValidationError: the value nests deeper than ``MAX_DEPTH``.
        """
        if type(key) is not str and not isinstance(key, str):
            raise ContextSerializationError(f"context keys must be strings, got {key!r}")
        # json_data's scalar fast path, inlined: steps call ``set`` in their innermost loops.
        kind = type(value)
        if (
            kind is str
            or kind is bool
            or value is None
            or (kind is int and _INT_MIN <= value <= _INT_MAX)
            or (kind is float and value - value == 0.0)
        ):
            stored = value
        else:
            same = _unchanged(value, MAX_DEPTH)
            stored = same[1] if same is not None else _strict(value, f"context value for {key!r}")
        self.data[key] = stored
        self.changes[key] = stored

    def update(self, values: Mapping[str, Any]) -> None:
        """``set`` every item of ``values``; all are checked before any is written."""
        for key in values:
            if not isinstance(key, str):
                raise ContextSerializationError(f"context keys must be strings, got {key!r}")
        converted = {key: json_data(value, f"context value for {key!r}") for key, value in values.items()}
        self.data.update(converted)
        self.changes.update(converted)

    def branch(self) -> WorkflowContext:
        """A copy for a parallel branch: same data, its own diff."""
        context = step_context(
            self.workflow_id,
            self.instance_id,
            _decode(_encode(self.data)),
            self.metadata,
            self.current_step,
            self.started_at,
            self.user_id,
            self.tenant_id,
            workflow_name=self.workflow_name,
        )
        context.step_history = list(self.step_history)
        return context

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.workflow_id,
            self.instance_id,
            self.data,
            dict(self.metadata),
            self.current_step,
            self.step_history,
            self.started_at,
            self.user_id,
            self.tenant_id,
            self.workflow_name,
            self.changes,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowContext):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"WorkflowContext(workflow_id={self.workflow_id!r}, instance_id={self.instance_id!r}, "
            f"workflow_name={self.workflow_name!r}, current_step={self.current_step!r}, data={self.data!r})"
        )


def step_context(  # noqa: PLR0917 - positional: the engine builds one context per step
    workflow_id: UUID,
    instance_id: UUID,
    data: dict[str, Any],
    metadata: Mapping[str, Any],
    current_step: str,
    started_at: _dt.datetime,
    user_id: str | None,
    tenant_id: str | None,
    *,
    workflow_name: str | None = None,
    history: Sequence[HistoryEntry] = (),
) -> WorkflowContext:
    """A context for running ``current_step``: ``WorkflowContext(...)`` with every field given.

    Built field by field: ``__init__`` checks each of its optional arguments for a default,
    and the engine makes one context per step.  ``data`` is used as it is (the engine passes
    its own copy); ``metadata`` is copied behind a read-only view, as ``__init__`` does.

    Args:
        workflow_id: the definition's UUID.
        instance_id: the instance's UUID.
        data: the step's own copy of the instance data.
        metadata: the instance's metadata.
        current_step: the step to run.
        started_at: when the instance started.
        user_id: who acts (the last human task's user, else the instance's creator).
        tenant_id: the instance's tenant.
        workflow_name: the definition's name (``context.get("_workflow_name")``).
        history: the instance's history lines, oldest first; ``step_history`` is built
            from them when first read (the sequence must not change while the step runs).
    """
    context: WorkflowContext = _new_object(WorkflowContext)
    context.workflow_id = workflow_id
    context.instance_id = instance_id
    context.data = data
    context.metadata = MappingProxyType(dict(metadata)) if metadata else _EMPTY_METADATA
    context.current_step = current_step
    context._history = None
    context._history_entries = history
    context.started_at = started_at
    context.user_id = user_id
    context.tenant_id = tenant_id
    context.workflow_name = workflow_name
    context.changes = {}
    return context
