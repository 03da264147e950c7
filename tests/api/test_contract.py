"""The API keeps its own contract (issue 14, seen 11): a property-based fuzz run with schemathesis
over every operation of the OpenAPI document, on SQLite and PostgreSQL, with a fixed seed and a
bounded number of examples (about a minute per database in all). It must find no server error, no
status code the document does not list, no response whose media type or body breaks its schema.

Each operation is driven with schema-conforming (positive) and schema-violating (negative) requests
as the command centre supervisor, who may read and act on most things (and an Open311 post with the
12345 hotline's api_key); one case exists, so that reads and commands reach past "not found" now and then.
"""

from __future__ import annotations

import time

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from govflow.api.app import create_app

#: examples per operation and mode (positive, negative); the whole run stays near a minute per database
EXAMPLES = 10
SEED = 20261129
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# pack uploads are zips: sent as the bytes schemathesis generates for a binary body
schemathesis.serializer.alias("application/zip", "application/octet-stream")


def test_every_operation_keeps_the_contract(govflow, api, tokens):
    api.report("citizen.zhang", description="东街口有个井盖没了", location={"lat": 26.0865, "lng": 119.3025})
    app = create_app(govflow)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens['cc.supervisor']}"}
    failures: list[str] = []
    counted = {"operations": 0, "requests": 0}
    started = time.perf_counter()
    with TestClient(app):
        for result in schema.get_all_operations():
            operation = result.ok()
            counted["operations"] += 1
            strategy = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the request
            )
            @given(case=strategy)
            def run(case) -> None:
                counted["requests"] += 1
                if isinstance(case.body, dict) and isinstance(case.body.get("api_key"), str):
                    case.body["api_key"] = tokens["hotline12345"]  # Open311: an integrator's key, past authentication
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # one operation's failure must not hide the others'
                failures.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {exc}"[:3000])
    elapsed = time.perf_counter() - started
    print(f"schemathesis: {counted['operations']} operations, {counted['requests']} requests in {elapsed:.1f}s")
    assert not failures, "\n\n".join(failures)
