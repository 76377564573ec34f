"""Which open wait a signal or event ends (pure: the engine asks, then delivers)."""

from __future__ import annotations

from functools import lru_cache

from flowstar.model.conditions import Condition, ConditionEvaluationError
from flowstar.model.state import WAIT_KINDS, InstanceState, SignalEntry, Token

__all__ = ["SIGNAL_SCAN_LIMIT", "accepts", "matching_wait"]

# A wait that opens looks at no more than this many logged signals of its name.
SIGNAL_SCAN_LIMIT = 200


def accepts(state: InstanceState, token: Token, entry: SignalEntry) -> bool:
    """Whether ``entry`` ends the wait ``token`` of the instance ``state``.

    It must have the wait's kind and name, be for this instance (or for all of its tenant),
    be recorded within the wait's lookback, come after the last one of its name the instance
    consumed, and satisfy the wait's filter (an event's payload; a filter that fails to
    evaluate rejects the event).
    """
    wait = token.wait
    if token.kind not in WAIT_KINDS or wait is None or token.kind != entry.kind or wait.name != entry.name:
        return False
    last = state.deliveries.get(entry.key)
    in_scope = (
        entry.tenant_id == state.tenant_id
        and entry.instance_id in (None, state.id)
        and (wait.since is None or entry.recorded_at >= wait.since)
        and (last is None or (entry.recorded_at.isoformat(), entry.id) > (last[0], last[1]))
    )
    return in_scope and _passes(wait.filter, entry)


def _passes(source: str | None, entry: SignalEntry) -> bool:
    if source is None:
        return True
    try:
        return _compiled(source)(entry.payload)
    except ConditionEvaluationError:
        return False


# Filters were checked when the wait opened (or the step was built): compile each once.
_compiled = lru_cache(maxsize=256)(Condition)


def matching_wait(state: InstanceState, entry: SignalEntry) -> Token | None:
    """The open wait of ``state`` that ``entry`` ends (the oldest, if several), or None."""
    for token in state.tokens.values():
        if accepts(state, token, entry):
            return token
    return None
