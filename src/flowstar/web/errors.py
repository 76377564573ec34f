"""Flowstar errors as 4xx JSON bodies (one documented shape for every error).

Body: ``{"status_code": int, "detail": str, "errors": [{"pointer": "/field", "message": str}]}``;
``errors`` lists one entry per invalid field (JSON pointer into the submitted data) and is
empty otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from flowstar.model.context import MAX_DEPTH
from flowstar.model.errors import (
    BulkOperationNotFoundError,
    ConcurrencyError,
    FormValidationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    StepNotFoundError,
    StoreUnavailableError,
    TaskNotFoundError,
    ValidationError,
    WorkflowNotFoundError,
    WorkflowsError,
)
from flowstar.web.schemas import ErrorBody, FieldError

__all__ = ["error_response", "exception_handlers", "pointer"]

log = structlog.get_logger("flowstar.web")


def pointer(field: str) -> str:
    """The JSON pointer (RFC 6901) of a dotted field path (``a.b`` -> ``/a/b``)."""
    if not field or field in ("_", "__root__"):
        return ""
    parts = field.split(".")
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def error_response(status: int, detail: str, errors: list[FieldError] | None = None) -> Response[ErrorBody]:
    """The JSON error response every flowstar route answers with."""
    body = ErrorBody(status_code=status, detail=detail, errors=errors or [])
    return Response(body, status_code=status, media_type=MediaType.JSON)


def _status(exc: WorkflowsError) -> int:
    # Most specific first: TaskNotFoundError is also a ValueError, TaskAlreadyCompletedError an
    # InvalidTransitionError (and so a ValueError).
    if isinstance(
        exc,
        (
            TaskNotFoundError,
            InstanceNotFoundError,
            WorkflowNotFoundError,
            StepNotFoundError,
            BulkOperationNotFoundError,
        ),
    ):
        return HTTP_404_NOT_FOUND
    if isinstance(exc, PermissionDeniedError):
        return HTTP_403_FORBIDDEN
    if isinstance(exc, FormValidationError):
        return HTTP_422_UNPROCESSABLE_ENTITY
    if isinstance(exc, (InvalidTransitionError, ConcurrencyError)):
        # A ConcurrencyError: others kept changing the instance meanwhile; a retry may succeed.
        return HTTP_409_CONFLICT
    if isinstance(exc, StoreUnavailableError):
        # A real server-side outage: say so (503), don't dress it up as the client's fault.
        return HTTP_503_SERVICE_UNAVAILABLE
    return HTTP_422_UNPROCESSABLE_ENTITY if isinstance(exc, ValidationError) else HTTP_400_BAD_REQUEST


def _message(exc: BaseException) -> str:
    # KeyError subclasses quote their argument in str(); the flowstar ones override __str__.
    return str(exc) or type(exc).__name__


def workflow_error_handler(_: Request[Any, Any, Any], exc: WorkflowsError) -> Response[ErrorBody]:
    """A flowstar error -> 404/403/409/422/400 (503 when the store is unavailable)."""
    errors: list[FieldError] = []
    if isinstance(exc, FormValidationError):
        errors = [
            FieldError(pointer=pointer(field), message=message)
            for field, messages in exc.field_errors.items()
            for message in messages
        ]
    elif isinstance(exc, ValidationError) and exc.errors:
        errors = [FieldError(pointer="", message=m) for m in exc.errors]
    return error_response(_status(exc), _message(exc), errors)


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own errors (400 bad JSON, 401, 403, 404, 405, 413 ...) in the same shape."""
    errors: list[FieldError] = []
    extra = exc.extra
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                message = str(item.get("message", ""))
                errors.append(FieldError(pointer=_request_pointer(item, message), message=message))
    return error_response(exc.status_code, exc.detail, errors)


# msgspec names a missing or unknown member in its message, reported at the enclosing object.
_NAMED_MEMBER = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]*)`")


def _request_pointer(item: dict[str, Any], message: str) -> str:
    """The JSON pointer of one of Litestar's validation errors.

    Litestar reports an error at the body's top level under the key ``data`` (its name for
    the body), which is the root of the submitted document, not a member called ``data``;
    a missing or unknown member points at that member.
    """
    key = str(item.get("key") or "")
    if item.get("source") == "body" and key == "data":
        key = ""
    named = _NAMED_MEMBER.match(message)
    if named is not None:
        key = f"{key}.{named.group(1)}" if key else named.group(1)
    return pointer(key)


def too_deep_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ErrorBody]:
    """A body nested too deeply for the JSON decoder (about a thousand levels) -> 400.

    Data deeper than ``MAX_DEPTH`` is refused anyway; the decoder just gives up before the
    check can say so.  Logged (without the traceback, whose frames hold the body), so a
    recursion of the server's own would still show.
    """
    log.warning("request refused: nested too deeply to decode", path=request.url.path, error=str(exc))
    return error_response(HTTP_400_BAD_REQUEST, f"the request nests deeper than {MAX_DEPTH} levels")


def exception_handlers() -> dict[type[Exception], Callable[..., Response[Any]]]:
    """The handlers the plugin installs (an application's own handlers take precedence)."""
    return {WorkflowsError: workflow_error_handler, HTTPException: http_error_handler, RecursionError: too_deep_handler}
