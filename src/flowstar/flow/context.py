"""The typed context of a code-first workflow, and ``get_context()`` inside a step.

A workflow class may declare a nested ``Context``: a pydantic model (when pydantic is
installed), a msgspec ``Struct`` or a dataclass.  Before each step its fields are read from
the instance data and validated; after the step the fields are written back, and only the
values that changed are recorded, so the commit carries exactly what the step did.  Data
keys that are not fields of the ``Context`` (a signal's extra payload, ``_wakeup``) stay in
the raw data.  Without a ``Context`` the step gets a ``DictContext``: a view of the step's
data with attribute access, written through as a graph step's ``context.set`` is.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import msgspec

from flowstar.model.context import json_data
from flowstar.model.errors import ValidationError

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext

__all__ = [
    "EVENT_KEY",
    "ContextModel",
    "DictContext",
    "EventInfo",
    "StepScope",
    "current_data",
    "current_scope",
    "get_context",
]

EVENT_KEY = "_event"
"""The data key under which an event-started instance receives its event."""

_MISSING: Any = object()


class DictContext(MutableMapping[str, Any]):
    """The context of a workflow without a ``Context`` class: its data, by key or attribute.

    ``ctx.total`` and ``ctx["total"]`` read the same value; a missing attribute raises
    ``AttributeError``.  Deleting a key stores ``None`` under it (instance data only grows).

    Inside a step it is a view of the step's ``WorkflowContext``, as a graph step sees it: an
    assignment is ``context.set`` (so a value that is not JSON data is refused on its line,
    and a tuple reads back as a list at once), and a list or dict read from it and changed in
    place is written back when the step returns.  Built from a mapping, it holds a copy.
    """

    __slots__ = ("_before", "_context", "_data")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_context", None)
        object.__setattr__(self, "_before", {})

    @classmethod
    def of(cls, context: WorkflowContext) -> DictContext:
        """The view of a running step's ``context``."""
        # Through the slots' own setters (``__setattr__`` writes data keys): there is one
        # view per step, and they take half the time of object.__setattr__.
        view = cls.__new__(cls)
        _set_data(view, context.data)
        _set_context(view, context)
        _set_before(view, {})
        return view

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the workflow data has no {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if self._context is not None and type(value) in _CONTAINERS and key not in self._before:
            # What it was, to tell after the step whether it changed in place.
            self._before[key] = msgspec.json.decode(msgspec.json.encode(value))
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if self._context is None:
            self._data[key] = value
        else:
            self._context.set(key, value)
            self._before.pop(key, None)

    def __delitem__(self, key: str) -> None:
        if key not in self._data:
            raise KeyError(key)
        self[key] = None

    # An attribute is its key (``ctx.total = 1`` is ``ctx["total"] = 1``): the item methods
    # themselves, not methods calling them, as every assignment in a step goes through here.
    __setattr__ = __setitem__
    __delattr__ = __delitem__

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"DictContext({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the data."""
        return {key: self[key] for key in self._data}

    def changed_in_place(self) -> dict[str, Any]:
        """The lists and dicts read from the view that the step changed without assigning them."""
        if not self._before:
            return {}
        return {key: self._data[key] for key, before in self._before.items() if self._data.get(key) != before}


_CONTAINERS = (list, dict)
_set_data = DictContext._data.__set__  # type: ignore[attr-defined]
_set_context = DictContext._context.__set__  # type: ignore[attr-defined]
_set_before = DictContext._before.__set__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EventInfo:
    """The event that started an ``event_workflow`` instance (``create_context(event=...)``).

    Attributes:
        id: the event's id.
        name: the event's name.
        entity_id: the id of the thing the event is about.
        at: when the event is (or was) due.
        payload: what was reported with it.
    """

    id: str
    name: str
    entity_id: str
    at: datetime | None
    payload: Mapping[str, Any]

    @property
    def entity(self) -> str:
        """The entity id (the seed's ``event.entity``: load the object from it)."""
        return self.entity_id

    @classmethod
    def from_data(cls, record: Mapping[str, Any]) -> EventInfo:
        """Read the runtime's ``_event`` record."""
        at = record.get("at")
        when = datetime.fromisoformat(at) if isinstance(at, str) and at else None
        payload = record.get("payload")
        return cls(
            id=str(record.get("id", "")),
            name=str(record.get("name", "")),
            entity_id=str(record.get("entity_id", "")),
            at=when,
            payload=dict(payload) if isinstance(payload, Mapping) else {},
        )


def _pydantic_base() -> type | None:
    try:
        from pydantic import BaseModel
    except ImportError:  # pydantic is optional
        return None
    return BaseModel


def _kind(cls: type | None) -> str:
    if cls is None:
        return "dict"
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        return "msgspec"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    base = _pydantic_base()
    if base is not None and isinstance(cls, type) and issubclass(cls, base):
        return "pydantic"
    raise ValidationError(
        f"Context must be a pydantic model, a msgspec Struct or a dataclass, got {cls!r}",
    )


def _fields(cls: type | None, kind: str) -> tuple[str, ...]:
    if cls is None:
        return ()
    if kind == "msgspec":
        return tuple(f.encode_name for f in msgspec.structs.fields(cls))
    if kind == "dataclass":
        return tuple(f.name for f in dataclasses.fields(cls))
    return tuple(cls.model_fields)  # type: ignore[attr-defined]


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: one line per field
        parts = []
        for error in errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return "; ".join(parts)
    return str(exc)


class ContextModel:
    """How one workflow class's context is built, validated, dumped and created.

    Args:
        cls: the ``Context`` class (None: a ``DictContext``).
        factory: the class's ``create_context`` (None: ``Context(**kwargs)``).
        workflow: the workflow's name, for error messages.
    """

    def __init__(self, cls: type | None, factory: Callable[..., Any] | None, workflow: str) -> None:
        self.cls = cls
        self.kind = _kind(cls)
        self.fields = _fields(cls, self.kind)
        self.factory = factory
        self.workflow = workflow
        # Read once: msgspec.structs.fields re-reads the class's annotations on every call,
        # and a context is dumped after every step.
        self._attributes: tuple[tuple[str, str], ...] = ()
        if self.kind == "msgspec":
            self._attributes = tuple((f.encode_name, f.name) for f in msgspec.structs.fields(cast(Any, cls)))
        elif self.kind == "dataclass":
            self._attributes = tuple((f.name, f.name) for f in dataclasses.fields(cast(Any, cls)))

    # -- data -> context -> data --------------------------------------------------------

    def bind(self, context: WorkflowContext) -> Any:
        """The context a running step changes: a view of ``context`` (``DictContext.of``),
        or the ``Context`` loaded from its data.

        Raises:
            ValidationError: the data does not fit the ``Context``.
        """
        if self.cls is None:
            return DictContext.of(context)
        return self.load(context.data)

    def load(self, data: Mapping[str, Any]) -> Any:
        """The context for ``data`` (a copy): its ``Context`` fields, validated.

        Raises:
            ValidationError: the data does not fit the ``Context``.
        """
        if self.cls is None:
            return DictContext(msgspec.json.decode(msgspec.json.encode(dict(data))))
        return self._validate({k: data[k] for k in self.fields if k in data})

    def _validate(self, values: Mapping[str, Any]) -> Any:
        assert self.cls is not None
        try:
            if self.kind == "pydantic":
                return self.cls.model_validate(dict(values))  # type: ignore[attr-defined]
            return msgspec.convert(dict(values), self.cls)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            # pydantic's ValidationError is a ValueError.
            raise ValidationError(
                f"workflow {self.workflow!r}: the data does not fit its Context: {_validation_message(exc)}"
            ) from exc

    def dump(self, context: Any) -> dict[str, Any]:
        """The context's values as JSON data, by data key.

        Raises:
            ValidationError: the step put something into the context that does not fit it.
        """
        if isinstance(context, DictContext):
            values = context.to_dict()
        elif self.cls is None or not isinstance(context, self.cls):
            raise ValidationError(
                f"workflow {self.workflow!r}: the context was replaced by {type(context).__name__}; "
                "change its fields instead"
            )
        elif self.kind == "pydantic":
            with warnings.catch_warnings():
                # A field assigned a value of the wrong type: ``changes`` validates it and
                # says which field, pydantic's serializer would only warn.
                warnings.simplefilter("ignore")
                values = cast(Any, context).model_dump(mode="json")
        else:
            # Field by field (for a dataclass too: to_builtins leaves out some of its default values).
            values = msgspec.to_builtins({key: getattr(context, name) for key, name in self._attributes})
        result: dict[str, Any] = json_data(values, f"the context of workflow {self.workflow!r}")
        return result

    def changes(self, before: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """What to write back to the data: each dumped value that differs from ``before``.

        A ``DictContext`` view wrote its assignments already: what is left are the values
        it handed out and the step changed in place.
        """
        if isinstance(context, DictContext):
            return context.changed_in_place()
        after = self.dump(context)
        if self.cls is not None:
            # Assignments are not checked (not by msgspec or dataclasses, nor by pydantic
            # without validate_assignment): check the result once.
            self._validate(after)
        return {key: value for key, value in after.items() if before.get(key, _MISSING) != value}

    # -- creation -----------------------------------------------------------------------

    def create(self, **kwargs: Any) -> dict[str, Any]:
        """The start data for ``kwargs``: ``create_context(**kwargs)`` (or the ``Context``'s
        own constructor), validated and dumped.

        Raises:
            ValidationError: the arguments do not make a valid context.
        """
        if self.cls is None and self.factory is None:
            return json_data(kwargs, f"the start data of workflow {self.workflow!r}")  # type: ignore[no-any-return]
        try:
            made = self.factory(**kwargs) if self.factory is not None else self.cls(**kwargs)  # type: ignore[misc]
        except TypeError as exc:
            raise ValidationError(f"workflow {self.workflow!r}: cannot create its context: {exc}") from exc
        except ValueError as exc:
            raise ValidationError(f"workflow {self.workflow!r}: invalid context: {_validation_message(exc)}") from exc
        if isinstance(made, Mapping) and not isinstance(made, DictContext):
            made = DictContext(made) if self.cls is None else self._validate(made)
        dumped = self.dump(made)
        if self.cls is not None:
            self._validate(dumped)
        return dumped

    def from_event(self, event: EventInfo) -> dict[str, Any]:
        """The start data of an event-started instance.

        ``create_context(event=...)`` when the factory takes an ``event``; else the factory
        or the ``Context`` gets the payload and ``entity_id`` (only the arguments it names).
        """
        values = {**event.payload, "entity_id": event.entity_id}
        if self.factory is not None:
            params = inspect.signature(self.factory).parameters
            if "event" in params:
                return self.create(event=event)
            return self.create(**_accepted(params, values))
        if self.cls is None:
            return self.create(**values)
        return self.create(**{k: v for k, v in values.items() if k in self.fields})

    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema of the ``Context`` (the definition's input schema), if it has one."""
        if self.cls is None:
            return None
        try:
            if self.kind == "pydantic":
                schema: dict[str, Any] = self.cls.model_json_schema()  # type: ignore[attr-defined]
            else:
                (ref,), components = msgspec.json.schema_components([self.cls])
                name = ref["$ref"].rsplit("/", 1)[-1]
                schema = dict(components.pop(name))
                if components:
                    schema["$defs"] = components
        except (TypeError, ValueError):  # a field type with no JSON Schema: no start form
            return None
        return schema


def _accepted(params: Mapping[str, inspect.Parameter], values: Mapping[str, Any]) -> dict[str, Any]:
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in params}


class StepScope:
    """What ``get_context()`` and friends read while a step runs.

    Attributes:
        context: the typed (or dict) context the step changes.
        workflow_context: the runtime's context (instance id, tenant, user, history).
    """

    # A plain slotted class: one is made per code-first step, and a dataclass costs more.
    __slots__ = ("context", "workflow_context")

    def __init__(self, context: Any, workflow_context: WorkflowContext) -> None:
        self.context = context
        self.workflow_context = workflow_context

    @property
    def data(self) -> Mapping[str, Any]:
        """The step's instance data, read-only: a ``DictContext``'s assignments show in it at
        once, a typed ``Context``'s when the step returns."""
        return MappingProxyType(self.workflow_context.data)


_scope: ContextVar[StepScope | None] = ContextVar("flowstar_flow_step", default=None)
_OUTSIDE_A_STEP = "get_context() is only available inside a running @step"


def current_scope() -> StepScope:
    """The running step's scope.

    Raises:
        RuntimeError: no code-first step is running in this context.
    """
    scope = _scope.get()
    if scope is None:
        raise RuntimeError(_OUTSIDE_A_STEP)
    return scope


def get_context() -> Any:
    """The running step's context: an instance of the workflow's ``Context`` (or a
    ``DictContext``).  Change its fields; they are saved when the step returns.

    Raises:
        RuntimeError: no code-first step is running in this context.
    """
    # current_scope() inlined: steps call this once or more each, on their hot path.
    scope = _scope.get()
    if scope is None:
        raise RuntimeError(_OUTSIDE_A_STEP)
    return scope.context


def current_data() -> Mapping[str, Any]:
    """The running step's raw instance data (every key, the ``Context``'s fields and others)."""
    return current_scope().data


# Make a scope the running step's (returning the token) and undo it: the ContextVar's own
# methods, with no Python frame around them (MethodCall.run calls both for every step).
enter: Callable[[StepScope], Token[StepScope | None]] = _scope.set
leave: Callable[[Token[StepScope | None]], None] = _scope.reset
