"""Schemathesis against the service's OpenAPI spec: generated requests never get a 5xx, and every
reply (status, content type, headers, body) conforms to the spec. Runs as the admin and as a user.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_helpers import ADMIN_KEY, FakeOpenAI, bearer, tiny_model  # noqa: E402

from preflm.serve import ServeSettings, create_app  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a fresh SQLite file, a fake generator, and a user key."""
    from fastapi.testclient import TestClient

    root = tmp_path_factory.mktemp("serve-schema")
    model_dir, questions = tiny_model(root)
    llm = FakeOpenAI()
    app = create_app(ServeSettings(model_dir=str(model_dir), questions=str(questions), db_url=f"sqlite:///{root / 's.db'}",
                                   admin_key=ADMIN_KEY, generator=llm.spec, max_body_bytes=16384))
    with TestClient(app) as client:
        user_key = client.post("/v1/users", json={"user_id": "u1"}, headers=bearer(ADMIN_KEY)).json()["api_key"]
        yield app, user_key
    llm.close()


def test_no_server_errors_and_replies_match_the_spec(served):
    """Every operation with valid and invalid inputs, as the admin and as user u1 (bounded example counts).

    Operations on a user's data are also generated with the path fixed to u1, so valid requests reach
    the database and the model instead of stopping at "no such user" / "not your user".
    """
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode

    app, user_key = served
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 10
    seen: set[tuple[str, int]] = set()

    for operation in operations:
        strategies = [(operation.as_strategy(mode), mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        if "{user_id}" in operation.path and operation.method.upper() != "DELETE":
            strategies.append((operation.as_strategy(path_parameters={"user_id": "u1"}), GenerationMode.POSITIVE))
        for strategy, mode in strategies:

            @given(case=strategy)
            @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
            def check(case):
                for key in (ADMIN_KEY, user_key):
                    response = case.call_and_validate(headers=bearer(key), checks=CHECKS)
                    seen.add((operation.path, response.status_code))

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
                assert mode == GenerationMode.NEGATIVE
    succeeded = {path for path, status in seen if status < 300}
    assert {"/v1/users", "/v1/users/{user_id}/profile", "/v1/users/{user_id}/questions/next", "/healthz"} <= succeeded
