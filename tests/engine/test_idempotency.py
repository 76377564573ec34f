"""Idempotent starts and the definition's input schema, on every store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowstar import BaseHumanStep, FormValidationError, ValidationError, WorkflowDefinition
from flowstar.model.state import IDEMPOTENCY_KEY_LIMIT
from tests.unit.helpers import Set, linear


def _flow(**kwargs: Any) -> WorkflowDefinition:
    return linear("order", Set("accept", accepted=True), BaseHumanStep("ship", assignee="bob"), **kwargs)


async def _count(engine: Any) -> int:
    return len((await engine.find_instances(limit=100)).items)


async def test_a_repeated_key_returns_the_first_instance(make_engine: Any) -> None:
    engine = make_engine(_flow())
    first = await engine.start_workflow("order", {"n": 1}, idempotency_key="order-1")
    again = await engine.start_workflow("order", {"n": 2}, idempotency_key="order-1")
    other = await engine.start_workflow("order", {"n": 3}, idempotency_key="order-2")
    assert again.id == first.id
    assert again.context.get("n") == 1  # the second start's data started nothing
    assert other.id != first.id
    assert await _count(engine) == 2
    assert len(await engine.get_tasks()) == 2


async def test_keys_are_scoped_to_the_tenant(make_engine: Any) -> None:
    engine = make_engine(_flow())
    acme = await engine.start_workflow("order", idempotency_key="k", tenant_id="acme")
    globex = await engine.start_workflow("order", idempotency_key="k", tenant_id="globex")
    untenanted = await engine.start_workflow("order", idempotency_key="k")
    assert len({acme.id, globex.id, untenanted.id}) == 3
    assert (await engine.start_workflow("order", idempotency_key="k", tenant_id="acme")).id == acme.id
    assert (await engine.start_workflow("order", idempotency_key="k")).id == untenanted.id


async def test_racing_starts_with_one_key_make_one_instance(make_engine: Any) -> None:
    engine = make_engine(_flow())
    started = await asyncio.gather(*(engine.start_workflow("order", idempotency_key="race") for _ in range(8)))
    assert len({s.id for s in started}) == 1
    assert await _count(engine) == 1
    assert len(await engine.get_tasks()) == 1


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)
async def test_engines_sharing_a_database_share_the_keys(make_engine: Any) -> None:
    # Two engines on one database stand for two API processes: the key is the store's.
    first, second = make_engine(_flow()), make_engine(_flow())
    started = await asyncio.gather(
        *(engine.start_workflow("order", idempotency_key="shared") for engine in (first, second) * 4)
    )
    assert len({s.id for s in started}) == 1
    assert await _count(first) == 1
    later = make_engine(_flow())  # a process started afterwards finds the key too
    assert (await later.start_workflow("order", idempotency_key="shared")).id == started[0].id


@pytest.mark.parametrize("key", ["", "x" * (IDEMPOTENCY_KEY_LIMIT + 1)])
async def test_a_bad_key_is_refused(make_engine: Any, key: str) -> None:
    engine = make_engine(_flow())
    with pytest.raises(ValidationError, match="idempotency key"):
        await engine.start_workflow("order", idempotency_key=key)
    assert await _count(engine) == 0


async def test_start_data_must_match_the_input_schema(make_engine: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "number", "minimum": 0}, "customer": {"type": "string"}},
        "required": ["customer"],
    }
    engine = make_engine(_flow(input_schema=schema))
    with pytest.raises(FormValidationError) as refused:
        await engine.start_workflow("order", {"amount": -5})
    assert refused.value.field_errors == {
        "customer": ["this field is required"],
        "amount": ["-5 is less than the minimum of 0"],
    }
    assert await _count(engine) == 0
    started = await engine.start_workflow("order", {"amount": 5, "customer": "ada"})
    assert started.context.get("accepted") is True


def test_an_invalid_input_schema_is_refused() -> None:
    with pytest.raises(ValidationError, match="input_schema is invalid"):
        _flow(input_schema={"type": "no-such-type"})
