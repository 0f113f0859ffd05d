"""GET /metrics: Prometheus text, read from the live objects at scrape time, so the hot paths
pay nothing for it."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from events.writer import GroupWriter
from timeline.feed import Hub


class TimelineCollector(Collector):
    """The service's figures: log head, appends, commit groups, feed subscribers and drops."""

    def __init__(self, writer: GroupWriter, hub: Hub) -> None:
        self.writer, self.hub = writer, hub

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("timeline_log_head", "Last log position seen", value=self.hub.head)
        yield CounterMetricFamily(
            "timeline_appended_events",
            "Events appended through this process",
            value=self.writer.appended,
        )
        yield CounterMetricFamily(
            "timeline_commit_groups", "Group commits made", value=self.writer.groups
        )
        yield GaugeMetricFamily(
            "timeline_writer_pending_events",
            "Events queued for the writer",
            value=self.writer.pending_events,
        )
        yield GaugeMetricFamily(
            "timeline_feed_subscribers", "Open streams", value=len(self.hub.subscribers)
        )
        yield CounterMetricFamily(
            "timeline_feed_dropped_subscribers",
            "Streams cut off because their queue was full",
            value=self.hub.dropped,
        )


def registry(writer: GroupWriter, hub: Hub) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=True)
    found.register(TimelineCollector(writer, hub))
    return found


def render(registry: CollectorRegistry) -> web.Response:
    return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")
