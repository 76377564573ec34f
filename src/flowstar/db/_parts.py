"""The base of the SQL store's parts (``_signal_log``, ``_bulk``): what they use of the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["StorePart"]


class StorePart:
    """A part of ``SQLAlchemyStore`` (its base class): its engines and its turn-taking."""

    engine: AsyncEngine
    _autocommit: AsyncEngine

    def _turn(self) -> Any:  # pragma: no cover - SQLAlchemyStore's
        raise TypeError(f"{type(self).__name__} is a part of SQLAlchemyStore")
