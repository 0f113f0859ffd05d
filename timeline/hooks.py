"""Webhooks as clients create them and the store keeps them: the body of POST /v1/webhooks
(WebhookIn), and the webhook made from it (an id, a signing secret, the position it starts
after), stored through events.subscriptions, which holds the SQL."""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from events.subscriptions import Subscription, Subscriptions
from events.types import Slug
from events.validation import validate_model
from events.values import timestamp
from timeline.filters import start_after
from timeline.signing import new_secret


class WebhookIn(BaseModel):
    """A subscription: where to POST, which events, and from which position."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: HttpUrl
    company: Annotated[list[Slug], Field(max_length=100)] = []
    type: Annotated[list[str], Field(max_length=20)] = []
    after: Annotated[int, Field(ge=0)] | None = None

    @classmethod
    def from_json(cls, raw: bytes) -> WebhookIn:
        """A request body as a subscription, or ValidationFailed (422) saying what is wrong
        where (invalid JSON included)."""
        return validate_model(raw, cls, "webhook")


async def create(subscriptions: Subscriptions, spec: WebhookIn) -> Subscription:
    """Store a new webhook for `spec`, acknowledged up to `spec.after` or else the head
    (PositionConflict when `spec.after` is past the head)."""
    head = (await subscriptions.store.head()).position
    acked = start_after(spec.after, head)
    hook = Subscription(
        id="wh_" + secrets.token_hex(12),
        url=str(spec.url),
        companies=list(spec.company),
        types=list(spec.type),
        secret=new_secret(),
        acked=acked,
        disabled=None,
        created=timestamp(),
    )
    await subscriptions.add(hook)
    return hook
