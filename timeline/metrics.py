"""GET /metrics: Prometheus text, one registry per application. Every figure is a plain int
(or a histogram of plain ints) that the object doing the work keeps, on the event loop, and
the collector reads at scrape time: the hot paths pay an addition or a bisection, no lock and
no prometheus_client object.

The middleware that `observer(app[HTTP])` makes, outermost, gives each request its id
(timeline.logs), counts its response by route template and status, and times appends.
`app[HTTP].rate_limited()` counts a 429 `rate-limited` in `timeline_rate_limited_total`."""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from events.writer import GroupWriter
from timeline import logs
from timeline.hub import Hub
from timeline.problems import PROBLEM_TYPE
from timeline.webhooks import Webhooks

APPEND_ROUTE = ("POST", "/v1/events")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_EVENTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
GROUP_EVENTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
LIMITS = ("requests", "streams")  # the kinds of rate limit shown at 0 before any refusal
SEEN = {"created": 0, "replayed": 0}  # append outcomes shown at 0 before any append


class Buckets:
    """A histogram as plain ints, for one thread (the event loop): observing a value is one
    bisection and two additions."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative = list(itertools.accumulate(self.counts))
        buckets = [
            (repr(float(bound)), count)
            for bound, count in zip(self.bounds, cumulative, strict=False)
        ]
        buckets.append(("+Inf", cumulative[-1]))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class Http:
    """What the middleware counts: responses by (method, route, status), appends by outcome
    and their duration, and rate-limit refusals by kind of limit."""

    def __init__(self) -> None:
        self.responses: dict[tuple[str, str, int], int] = {}
        self.appends: dict[str, int] = {}
        self.append_seconds = Buckets(SECONDS)
        self.limited: dict[str, int] = dict.fromkeys(LIMITS, 0)

    def rate_limited(self, limit: str = "requests") -> None:
        """Count one request refused 429 `rate-limited` (`limit`: "requests" for a rate,
        "streams" for open streams, or another short constant: never a client's value)."""
        self.limited[limit] = self.limited.get(limit, 0) + 1

    def count(self, method: str, route: str, status: int) -> None:
        key = (method if method in METHODS else "other", route, status)
        self.responses[key] = self.responses.get(key, 0) + 1


HTTP = web.AppKey("http_metrics", Http)


def append_outcome(response: web.StreamResponse) -> str:
    """created (201), replayed (200: a retry of a stored batch), or the problem type of the
    refusal the client got (version-conflict, id-conflict, validation, unavailable, ...)."""
    if response.status in (200, 201):
        return "created" if response.status == 201 else "replayed"
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(body, bytes) and response.content_type == "application/problem+json":
        try:
            kind = orjson.loads(body)["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            kind = None
        if isinstance(kind, str) and kind.startswith(PROBLEM_TYPE):
            return kind.removeprefix(PROBLEM_TYPE)
    return str(response.status)


def observer(figures: Http) -> Middleware:
    """The outermost middleware, counting into `figures`: it gives the request its id, for
    the log lines written meanwhile (and for the response's header, see
    logs.echo_request_id), then counts the response by route and status, and times an
    append."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = logs.request_id(request.headers.get(logs.HEADER))
        request[logs.REQUEST_ID] = rid
        token = logs.current.set(rid)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # below 400 (problems turns the rest into answers)
            figures.count(request.method, logs.route(request), exc.status)
            raise
        finally:
            logs.current.reset(token)
        method, route = request.method, logs.route(request)
        figures.count(method, route, response.status)
        if route == APPEND_ROUTE[1] and method == APPEND_ROUTE[0]:
            figures.append_seconds.observe(time.perf_counter() - started)
            outcome = append_outcome(response)
            figures.appends[outcome] = figures.appends.get(outcome, 0) + 1
        return response

    return observe


class TimelineCollector(Collector):
    """The service's figures, read from the objects that keep them."""

    def __init__(
        self, writer: GroupWriter, hub: Hub, webhooks: Webhooks | None, http: Http
    ) -> None:
        self.writer, self.hub, self.webhooks, self.http = writer, hub, webhooks, http
        self.batch_events = Buckets(BATCH_EVENTS)
        self.group_events = Buckets(GROUP_EVENTS)
        writer.on_batch = self.batch_events.observe
        writer.on_group = self.group_events.observe

    def collect(self) -> Iterator[Metric]:
        yield from self._log()
        yield from self._http()
        yield from self._feed()
        yield from self._webhooks()

    def _log(self) -> Iterator[Metric]:
        writer = self.writer
        yield GaugeMetricFamily("timeline_log_head", "Last log position seen", value=self.hub.head)
        yield CounterMetricFamily(
            "timeline_appended_events",
            "Events appended through this process",
            value=writer.appended,
        )
        yield _counters(
            "timeline_append_events",
            "Events of the appends that reached the writer, by outcome (created, replayed, or "
            "the refusal's problem type)",
            "outcome",
            {**SEEN, **writer.events_by_outcome},
        )
        yield self.batch_events.family(
            "timeline_append_batch_events", "Events per append that reached the writer"
        )
        yield CounterMetricFamily(
            "timeline_commit_groups", "Group commits made", value=writer.groups
        )
        yield self.group_events.family(
            "timeline_commit_group_events", "Events per group commit (one transaction)"
        )
        yield GaugeMetricFamily(
            "timeline_writer_pending_events",
            "Events queued for the writer",
            value=writer.pending_events,
        )

    def _http(self) -> Iterator[Metric]:
        http = self.http
        yield _counters(
            "timeline_appends",
            "POST /v1/events answered, by outcome (created, replayed, or the refusal's "
            "problem type)",
            "outcome",
            {**SEEN, **http.appends},
        )
        yield http.append_seconds.family(
            "timeline_append_duration_seconds", "Time to answer POST /v1/events, any outcome"
        )
        responses = CounterMetricFamily(
            "timeline_http_responses",
            "Responses by method, route (its path template) and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in sorted(http.responses.items()):
            responses.add_metric([method, route, str(status)], count)
        yield responses
        yield _counters(
            "timeline_rate_limited",
            "Requests refused 429 rate-limited, by kind of limit",
            "limit",
            http.limited,
        )

    def _feed(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "timeline_feed_subscribers", "Open streams", value=len(self.hub.subscribers)
        )
        yield CounterMetricFamily(
            "timeline_feed_dropped_subscribers",
            "Streams cut off because their queue was full",
            value=self.hub.dropped,
        )

    def _webhooks(self) -> Iterator[Metric]:
        webhooks = self.webhooks
        if webhooks is None:
            return
        yield GaugeMetricFamily(
            "timeline_webhooks_leading",
            "1 while this process holds the webhooks lease (and delivers), else 0",
            value=int(webhooks.leading),
        )
        yield _counters(
            "timeline_webhook_deliveries",
            "Deliveries answered 2xx, by webhook",
            "webhook",
            webhooks.delivered,
        )
        yield _counters(
            "timeline_webhook_failures",
            "Delivery attempts that failed (an answer other than 2xx, or no answer), by webhook",
            "webhook",
            webhooks.failed,
        )
        lag = GaugeMetricFamily(
            "timeline_webhook_lag_events",
            "Log head minus the webhook's acknowledged position, for each webhook this process "
            "delivers",
            labels=["webhook"],
        )
        head = self.hub.head
        for hook_id, hook in sorted(webhooks.delivering.items()):
            lag.add_metric([hook_id], max(0, head - hook.acked))
        yield lag


def _counters(name: str, documentation: str, label: str, counts: Mapping[str, int]) -> Metric:
    """A counter with one label: a sample per key of `counts`, in key order."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


def registry(
    writer: GroupWriter, hub: Hub, webhooks: Webhooks | None = None, http: Http | None = None
) -> CollectorRegistry:
    """The application's registry (without `webhooks`, no webhook figures; without `http`,
    the HTTP figures stay at 0: no middleware counts them)."""
    found = CollectorRegistry(auto_describe=True)
    found.register(TimelineCollector(writer, hub, webhooks, http or Http()))
    return found


def render(registry: CollectorRegistry) -> web.Response:
    return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")
