"""The domain errors of Timeline. Every layer raises these; the HTTP layer maps them once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TimelineError(Exception):
    """Base of every error Timeline raises on purpose; `name` is its problem type."""

    name = "bad-request"
    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.retry_after = retry_after
        self.extra = extra


class BadRequest(TimelineError):
    """A malformed query parameter, header or cursor."""


class ValidationFailed(TimelineError):
    """An invalid request body."""

    name = "validation"
    status = 422
    title = "Validation failed"


class Unauthorized(TimelineError):
    """No token, or a token the server does not know."""

    name = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(TimelineError):
    """A valid token lacking the scope the request needs."""

    name = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(TimelineError):
    """The thing asked for does not exist."""

    name = "not-found"
    status = 404
    title = "Not found"


class TooLarge(TimelineError):
    """A body over the size cap."""

    name = "too-large"
    status = 413
    title = "Payload too large"


class IdConflict(TimelineError):
    """An event id already stored with other content, or a batch mixing stored and new ids."""

    name = "id-conflict"
    status = 409
    title = "Event id conflict"


class VersionConflict(TimelineError):
    """`expected_version` did not match the company stream's version."""

    name = "version-conflict"
    status = 409
    title = "Version conflict"


class PositionConflict(TimelineError):
    """A position or time past the head of the log."""

    name = "position-conflict"
    status = 409
    title = "Position conflict"

    @classmethod
    def past_head(cls, position: int, head: int) -> PositionConflict:
        return cls(f"position {position} is past the head of the log ({head})", head=head)

    @classmethod
    def unless_within(cls, position: int, head: int) -> None:
        """Raise unless `position` is at or before the log's head `head`."""
        if position > head:
            raise cls.past_head(position, head)


class RateLimited(TimelineError):
    """Too many requests."""

    name = "rate-limited"
    status = 429
    title = "Too many requests"


class ChainBroken(TimelineError):
    """An entry of the log does not hash to what the chain says: the database was changed."""

    name = "chain-broken"
    status = 500
    title = "The log's hash chain is broken"


class Unavailable(TimelineError):
    """The service cannot take the request now (shutting down, writer overloaded)."""

    name = "unavailable"
    status = 503
    title = "Service unavailable"


class StoreError(TimelineError):
    """A storage failure the backend could not map to anything more precise."""

    name = "unavailable"
    status = 503
    title = "Storage unavailable"


class SchemaMismatch(StoreError):
    """The database's schema is newer than this version of the code knows."""
