"""The OpenAPI document describes itself: every operation has a summary of its own (not one
derived from the handler's name), a description, an operation id; every parameter and every
response is described, every error response carries an example, and every success response
an example that validates against its schema. The API documents what it serves; this test
fails on the first operation that does not."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.apipipeline import IN_PROCESS_HOSTS

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("openapi")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BTCFS_", "DBT_"))}
    env.update(BTCFS_DATA_DIR=str(root), BTCFS_API_ALLOWED_HOSTS=IN_PROCESS_HOSTS)
    with TestClient(create_app(ApiSettings.from_env(env))) as client:
        yield client.get("/docs/openapi.json").json()


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_operation_has_its_own_summary_a_description_and_an_id(
    spec: dict[str, Any],
) -> None:
    found = operations(spec)
    assert len(found) >= 20
    ids = [op.get("operationId") for _, op in found]
    assert all(ids) and len(set(ids)) == len(ids), ids
    for name, op in found:
        summary = op.get("summary") or ""
        # Litestar's fallback is the handler's name in CamelCase ("GetBars", "Asynccallable")
        assert summary and not re.fullmatch(r"[A-Z][A-Za-z]+", summary), (name, summary)
        description = op.get("description") or ""
        assert len(description.split()) >= 8, (name, description)


def test_every_parameter_and_response_is_described(spec: dict[str, Any]) -> None:
    for name, op in operations(spec):
        for parameter in op.get("parameters", []):
            assert parameter.get("description"), (name, parameter["name"])
        assert op.get("responses"), name
        for status, response in op["responses"].items():
            assert response.get("description"), (name, status)
            if status.startswith(("4", "5")):
                # errors are problem details; /health's 503 is its own body
                (kind, content), *_ = response["content"].items()
                assert kind == "application/problem+json" or name == "GET /health", (name, kind)
                examples = content.get("examples") or {}
                assert examples, (name, status)
                (example,) = examples.values()
                assert example["value"].get("status_code", int(status)) == int(status), name


def test_every_success_response_has_an_example_that_matches_its_schema(
    spec: dict[str, Any],
) -> None:
    from jsonschema import Draft202012Validator

    checked = 0
    for name, op in operations(spec):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, name
        for status, response in successes.items():
            assert response.get("content"), (name, status)
            for media, content in response["content"].items():
                if content.get("schema", {}).get("format") == "binary":
                    continue  # the Arrow file: no example in a JSON document
                examples = content.get("examples") or {}
                assert examples, (name, status, media)
                for example in examples.values():
                    value = example["value"]
                    assert value, (name, status, media)
                    # the schema as it stands in the document, its $refs into components
                    schema = {**content["schema"], "components": spec["components"]}
                    errors = list(Draft202012Validator(schema).iter_errors(value))
                    assert not errors, (name, status, media, [e.message for e in errors[:3]])
                    checked += 1
    assert checked >= 27, checked  # 24 JSON bodies, 3 CSV tables, the event stream
