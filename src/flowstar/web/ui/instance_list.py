"""The instance list page: the instances a user may open, filtered, in keyset pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.bulk import BulkFilter
from flowstar.model.enums import WorkflowStatus, workflow_status
from flowstar.model.errors import ValidationError
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.ui.forms import FormValues
from flowstar.web.ui.routes import page_context, sign_in_needed
from flowstar.web.ui.task_access import may_administer

__all__ = ["InstanceFilter", "instance_list", "instance_list_page"]

_STATUSES = [status.value for status in WorkflowStatus]


@dataclass(frozen=True)
class InstanceFilter:
    """The list's filters as the query string gives them (strings, "" when not set)."""

    workflow: str = ""
    status: str = ""
    created_after: str = ""
    created_before: str = ""

    @classmethod
    def from_form(cls, posted: FormValues) -> InstanceFilter:
        """The filters a form carried along (the bulk forms keep the list's filters)."""

        def field(name: str) -> str:
            return (posted.get(name) or [""])[0].strip()

        return cls(field("workflow"), field("status"), field("created_after"), field("created_before"))

    def query(self) -> str:
        """The filters that are set, as a query string (kept by the next page link)."""
        params = {
            "workflow": self.workflow,
            "status": self.status,
            "created_after": self.created_after,
            "created_before": self.created_before,
        }
        return urlencode({key: value for key, value in params.items() if value})

    def engine_filters(self) -> dict[str, Any]:
        """The ``find_instances`` arguments for these filters.

        Raises:
            ValidationError: an unknown status or a time that is not one.
        """
        return {
            "workflow_name": self.workflow or None,
            "status": workflow_status(self.status) if self.status else None,
            "created_after": _moment(self.created_after, "started from"),
            "created_before": _moment(self.created_before, "started before"),
        }

    def input_value(self, name: str) -> str:
        """The time filter ``name`` as the page's datetime-local input shows it: in UTC, to
        the minute (a plain date is its midnight); the text as given when it is no time,
        so that the error beside it shows what was typed."""
        text: str = getattr(self, name)
        try:
            moment = _moment(text, name)
        except ValidationError:
            return text
        if moment is None:
            return ""
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")

    def bulk_filter(self) -> BulkFilter:
        """The same filters for a bulk operation ("act on every matching instance").

        Raises:
            ValidationError: as ``engine_filters``.
        """
        found = self.engine_filters()
        status = found["status"]
        return BulkFilter(
            workflow=found["workflow_name"],
            statuses=(status.value,) if status is not None else None,
            created_after=found["created_after"],
            created_before=found["created_before"],
        )


def _moment(text: str, what: str) -> datetime | None:
    # The browser's datetime-local input has no time zone: read it (or a plain date) as UTC.
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{what}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _list_context(engine: Engine, user: User | None, shown: InstanceFilter, cursor: str) -> dict[str, Any]:
    context: dict[str, Any] = {
        "filters": shown,
        "query": shown.query(),
        "statuses": _STATUSES,
        "workflows": sorted({d.name for d in engine.registry.list_definitions()}),
        "instances": [],
        "next_cursor": None,
        "error": "",
        "only_mine": user is not None and not user.is_admin,
        # An admin may select instances (or take every matching one) and act on them in bulk.
        "can_bulk": may_administer(user),
        "cursor": cursor,
        "selected": set(),
        "bulk_notice": "",
        "posted": {},
    }
    try:
        page = await engine.find_instances(**shown.engine_filters(), user=user, cursor=cursor or None)
    except ValidationError as exc:
        context["error"] = str(exc)
    else:
        context.update(instances=page.items, next_cursor=page.next_cursor)
    return context


@get("/instances", name="flowstar-ui:instances")
async def instance_list(
    request: Request[Any, Any, Any],
    *,
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    workflow: FromQuery[str] = "",
    status: FromQuery[str] = "",
    created_after: FromQuery[str] = "",
    created_before: FromQuery[str] = "",
    cursor: FromQuery[str] = "",
) -> Template | Redirect:
    """Instances newest first, filtered by workflow, status and start time; a bad filter is a 400."""
    redirect = sign_in_needed(web_config, current_user)
    if redirect:
        return redirect
    shown = InstanceFilter(workflow.strip(), status.strip(), created_after.strip(), created_before.strip())
    return await instance_list_page(engine, current_user, web_config, shown, cursor)


async def instance_list_page(
    engine: Engine,
    user: User | None,
    config: WebConfig,
    shown: InstanceFilter,
    cursor: str = "",
    *,
    status: int = 200,
    **shown_too: Any,
) -> Template:
    """The list page; ``shown_too`` overrides its context (a bulk form's refusal and input).

    A bad filter answers 400 whatever ``status`` says: the list itself could not be read.
    """
    context = await _list_context(engine, user, shown, cursor)
    context.update(shown_too)
    return Template(
        template_name="flowstar/instance_list.html",
        context=page_context(config, user, **context),
        status_code=400 if context["error"] else status,
    )
