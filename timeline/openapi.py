"""The OpenAPI 3.1 document, generated from the endpoints' own pydantic models.

Besides what each endpoint lists, every operation is described with the answers it shares
with the others (see `_shared_errors`): the problem documents of a bad query, of a credential,
of a rate limit and of storage being away. Each problem status has its own schema: the
problem types (`urn:timeline:problem:<name>`) it can carry, taken from events.errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from events.errors import TimelineError
from timeline.models import Problem
from timeline.problems import PROBLEM_TYPE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
PROBLEM_CONTENT = "application/problem+json"
# What the HTTP layer answers beside the domain's errors (timeline.problems): 405 (a method a
# route does not take) is a bad request; a body over the cap is too large.
_HTTP_PROBLEMS = {400: {"bad-request"}, 405: {"bad-request"}, 413: {"too-large"}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'Bearer realm="timeline"',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before asking again",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before asking again, when known",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}
# A GET may carry its token as `?access_token=` (RFC 6750, section 2.3): timeline.dashboard.
ACCESS_TOKEN = "access_token"


@dataclass(frozen=True)
class Param:
    """A query parameter (or header) of an endpoint."""

    name: str
    schema: dict[str, Any]
    description: str
    repeatable: bool = False
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A route with what /openapi.json says of it.

    `scope` is the token scope it needs; `read` endpoints are open unless the server runs with
    TIMELINE_READ_AUTH=1, but check a credential when one is sent. `responses` maps a status
    to the model of its body (None: a body of `content_type` with no schema; 204 has none).
    `errors` are the problem statuses particular to the endpoint (the shared ones are added)."""

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


def _shared_errors(endpoint: Endpoint) -> set[int]:
    """The problem statuses every endpoint of its kind can answer, whatever it lists."""
    statuses = {429}  # a rate limit (TIMELINE_RATE_LIMIT) applies to every request
    if endpoint.scope is not None:
        statuses |= {401, 403}  # a missing, malformed, unknown or revoked token; a scope
    if endpoint.path.startswith("/v1/"):
        statuses |= {400, 503}  # an unknown or malformed query parameter; storage away
    return statuses


def problem_names() -> dict[int, set[str]]:
    """Each problem status and the problem names it can carry, from events.errors."""
    names: dict[int, set[str]] = {status: set(found) for status, found in _HTTP_PROBLEMS.items()}
    pending: list[type[TimelineError]] = [TimelineError]
    while pending:
        error = pending.pop()
        names.setdefault(error.status, set()).add(error.name)
        pending.extend(error.__subclasses__())
    return names


def _problem_schema(status: int, names: set[str], base: dict[str, Any]) -> dict[str, Any]:
    return {
        "allOf": [base],
        "properties": {
            "type": {"enum": sorted(PROBLEM_TYPE + name for name in names)},
            "status": {"const": status},
        },
    }


def _param_list(endpoint: Endpoint) -> list[dict[str, Any]]:
    params = [_param(param) for param in endpoint.params]
    if endpoint.method == "GET" and endpoint.scope is not None:
        token = Param(
            ACCESS_TOKEN,
            {"type": "string"},
            "The bearer token, for a client that cannot send headers (a browser's "
            "EventSource); the Authorization header wins when both are sent",
        )
        params.append(_param(token))
    return params


def _security(endpoint: Endpoint) -> list[dict[str, list[str]]]:
    assert endpoint.scope is not None
    needed = {"bearer": [endpoint.scope]}
    # An open read: no credential at all is fine, unless TIMELINE_READ_AUTH=1.
    return [{}, needed] if endpoint.scope == "read" else [needed]


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
    schemas: dict[str, Any] = definitions.get("$defs", {})
    names = problem_names()
    problem_base = refs[(("problem", 0), "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        key = endpoint.method + endpoint.path
        operation: dict[str, Any] = {"summary": endpoint.summary, "responses": {}}
        if params := _param_list(endpoint):
            operation["parameters"] = params
        if endpoint.body is not None:
            schema = refs[((key, -1), "validation")]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        if endpoint.scope is not None:
            operation["security"] = _security(endpoint)
        for status, model in endpoint.responses.items():
            response: dict[str, Any] = {"description": str(status)}
            if status != 204:
                media: dict[str, Any] = {}
                if model is not None:
                    media["schema"] = refs[((key, status), "serialization")]
                response["content"] = {endpoint.content_type: media}
            operation["responses"][str(status)] = response
        for status in sorted(set(endpoint.errors) | _shared_errors(endpoint)):
            name = f"Problem{status}"
            schemas.setdefault(name, _problem_schema(status, names[status], problem_base))
            problem: dict[str, Any] = {
                "description": ", ".join(sorted(names[status])),
                "content": {PROBLEM_CONTENT: {"schema": {"$ref": REF.format(model=name)}}},
            }
            if status in _HEADERS:
                problem["headers"] = _HEADERS[status]
            operation["responses"][str(status)] = problem
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _param(param: Param) -> dict[str, Any]:
    schema = {"type": "array", "items": param.schema} if param.repeatable else param.schema
    spec: dict[str, Any] = {
        "name": param.name,
        "in": param.where,
        "required": param.required or param.where == "path",
        "schema": schema,
        "description": param.description,
    }
    if param.repeatable:
        spec.update(style="form", explode=True)
    return spec
