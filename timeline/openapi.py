"""The OpenAPI 3.1 document, generated from the endpoints' own pydantic models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from timeline.models import Problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Param:
    """A query parameter (or header) of an endpoint."""

    name: str
    schema: dict[str, Any]
    description: str
    repeatable: bool = False
    where: str = "query"


@dataclass(frozen=True)
class Endpoint:
    """A route with what /openapi.json says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, Any]
    body: Any = None
    params: tuple[Param, ...] = ()
    scope: str | None = None
    errors: tuple[int, ...] = field(default=())
    content_type: str = "application/json"


def document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    adapters: list[tuple[tuple[str, int], JsonSchemaMode, TypeAdapter[Any]]] = []
    for endpoint in endpoints:
        key = endpoint.method + endpoint.path
        if endpoint.body is not None:
            adapters.append(((key, -1), "validation", TypeAdapter(endpoint.body)))
        for status, model in endpoint.responses.items():
            if model is not None:
                adapters.append(((key, status), "serialization", TypeAdapter(model)))
    adapters.append((("problem", 0), "serialization", TypeAdapter(Problem)))
    refs, definitions = TypeAdapter.json_schemas(adapters, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        key = endpoint.method + endpoint.path
        operation: dict[str, Any] = {"summary": endpoint.summary, "responses": {}}
        if endpoint.params:
            operation["parameters"] = [_param(param) for param in endpoint.params]
        if endpoint.body is not None:
            schema = refs[((key, -1), "validation")]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        if endpoint.scope is not None:
            operation["security"] = [{"bearer": [endpoint.scope]}]
        for status, model in endpoint.responses.items():
            response: dict[str, Any] = {"description": str(status)}
            if model is not None:
                schema = refs[((key, status), "serialization")]
                response["content"] = {endpoint.content_type: {"schema": schema}}
            operation["responses"][str(status)] = response
        problem_schema = refs[(("problem", 0), "serialization")]
        for status in endpoint.errors:
            operation["responses"][str(status)] = {
                "description": "problem",
                "content": {"application/problem+json": {"schema": problem_schema}},
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _param(param: Param) -> dict[str, Any]:
    schema = {"type": "array", "items": param.schema} if param.repeatable else param.schema
    spec: dict[str, Any] = {
        "name": param.name,
        "in": param.where,
        "required": param.where == "path",
        "schema": schema,
        "description": param.description,
    }
    if param.repeatable:
        spec.update(style="form", explode=True)
    return spec
