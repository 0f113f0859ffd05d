"""Settings, read from TIMELINE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.sqlite import Synchronous

MAX_BODY_BYTES = 1024 * 1024


class Settings(BaseSettings):
    """Service settings; each field `x` is read from `TIMELINE_X`."""

    model_config = SettingsConfigDict(env_prefix="TIMELINE_", extra="ignore")

    db: str = "sqlite:///timeline.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bootstrap_token: SecretStr | None = None
    read_auth: bool = False
    log_format: Literal["json", "text"] = Field(
        default="json", description="`timeline serve`'s log lines: JSON objects, or text"
    )
    access_log: bool = Field(default=True, description="one log line per request")
    sqlite_synchronous: Synchronous = "FULL"
    shutdown_timeout: float = 10.0
    max_pending_events: int = 100_000
    commit_linger_ms: float = Field(
        default=2.0, ge=0, le=1000, description="longest wait for more appends before a commit"
    )
    commit_quiet_ms: float = Field(
        default=0.5, ge=0, le=1000, description="a gap in appends this long ends the wait"
    )
    feed_queue_size: int = Field(default=1000, ge=1, description="commits a subscriber may lag")
    feed_ping_seconds: float = Field(default=15.0, gt=0)
    feed_coalesce_ms: float = Field(
        default=5.0, ge=0, le=1000, description="least time between two fan-outs of the feed"
    )
    feed_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="longest delay before another process's commits reach this one's feed",
    )
    webhook_backoff_seconds: float = Field(default=1.0, gt=0, description="first retry delay")
    rate_limit: str | None = Field(
        default=None,
        description="RATE or RATE,BURST: requests a second per client, and how many at once",
    )
    stream_limit: int = Field(
        default=20, ge=1, description="open streams per client, when rate_limit is set"
    )
    header_timeout_seconds: float = Field(
        default=10.0, ge=0, description="longest a request's line and headers may take (0: none)"
    )
