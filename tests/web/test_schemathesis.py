"""Property tests over the OpenAPI schema: no 5xx, responses match their schemas."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from tests.web.conftest import make_app

app, _ = make_app()
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case: schemathesis.Case) -> None:
    # Only the server's failures and the response schemas: the API's own answers to bad input
    # (404 for an unknown id, 422 for bad data) are what the other tests check.
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
