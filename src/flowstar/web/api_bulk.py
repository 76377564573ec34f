"""REST routes for bulk operations (admin, under ``path_prefix``).

``POST /bulk`` stores the operation and answers 202 at once; it runs in the background in
this process (and goes on after a restart), and ``GET /bulk/{id}`` reports its progress.
``POST /bulk/count`` is the dry run.  Sending the same request again returns the first
operation (see ``flowstar.engine.bulk``).
"""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.params import FromPath, JSONBody

from flowstar.model.bulk import BulkRequest, describe
from flowstar.web.deps import CurrentUser, EngineDep
from flowstar.web.schemas import BulkCountOut, BulkOut, BulkSubmit

__all__ = ["bulk_routes"]


def _request(data: BulkSubmit) -> BulkRequest:
    return BulkRequest(
        kind=data.kind,
        filter=data.filter,
        from_step=data.from_step,
        reason=data.reason,
        to_user=data.to_user,
        to_group=data.to_group,
    )


@post("/bulk", summary="Retry, cancel or reassign in bulk (admin)", status_code=202)
async def submit_bulk(engine: EngineDep, current_user: CurrentUser, data: JSONBody[BulkSubmit]) -> BulkOut:
    """Start a bulk operation; 202 with the operation (poll ``GET /bulk/{id}``)."""
    operation = await engine.bulk.submit(
        _request(data),
        user=current_user,
        tenant_id=data.tenant_id,
        idempotency_key=data.idempotency_key,
    )
    return BulkOut(**describe(operation))


@post("/bulk/count", summary="Count what a bulk operation would act on (admin)", status_code=200)
async def count_bulk(engine: EngineDep, current_user: CurrentUser, data: JSONBody[BulkSubmit]) -> BulkCountOut:
    """The dry run: how many items the request matches now; nothing is changed."""
    count = await engine.bulk.count(_request(data), user=current_user, tenant_id=data.tenant_id)
    return BulkCountOut(count=count)


@get("/bulk/{operation_id:str}", summary="A bulk operation's progress (admin)")
async def get_bulk(engine: EngineDep, current_user: CurrentUser, operation_id: FromPath[str]) -> BulkOut:
    """Its status and counts: acted, skipped (already done), failed (with the first errors)."""
    return BulkOut(**describe(await engine.bulk.get(operation_id, user=current_user)))


def bulk_routes() -> list[Any]:
    """The handlers, for the API's admin router."""
    return [submit_bulk, count_bulk, get_bulk]
