"""Prometheus metrics of one tgwatch process: import and count, the ``/metrics`` route reads them.

The counters live at module level, which the design otherwise avoids: a metric is a process-wide
fact (Prometheus scrapes each process), prometheus-client's own model is module-level metric
objects, and passing them through every call would add a parameter to code that only wants to say
"one more". They sit in tgwatch's own ``REGISTRY`` (not the library's default one) so tests and
other libraries cannot collide with them.

Who counts what:

* crawl runs (``crawler.scheduling.runners``): pages, messages new/updated, media refs, errors by
  kind, flood waits (web 429 and MTProto flood waits), run durations and outcomes;
* hash-list matching should call ``count_hash_match(signal)`` where it finds a match;
* queue depth is read from the store when ``/metrics`` is scraped (``refresh_queue_depth``);
* takedown figures likewise (``crawler.takedowns.gauges.set_takedown_figures`` fills the gauges
  declared here): the same numbers as ``tgwatch takedown stats``, the API and the console, computed
  from the stored requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

PAGES_FETCHED = Counter(
    "tgwatch_pages_fetched", "Source pages fetched (web preview pages, MTProto history pages)", ["method"],
    registry=REGISTRY,
)  # fmt: skip
MESSAGES_INGESTED = Counter(
    "tgwatch_messages_ingested", "Messages stored by ingest, by outcome (new, updated)", ["method", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
MEDIA_REFS = Counter("tgwatch_media_refs", "Media references seen in crawled messages", ["method"], registry=REGISTRY)
ERRORS = Counter("tgwatch_errors", "Errors recorded on runs, by error kind", ["kind"], registry=REGISTRY)
FLOOD_WAITS = Counter(
    "tgwatch_flood_waits", "Rate limits met (HTTP 429, MTProto FLOOD_WAIT)", ["method"], registry=REGISTRY
)
FLOOD_WAIT_SECONDS = Counter(
    "tgwatch_flood_wait_seconds", "Seconds of rate-limit waits asked for by sources", ["method"], registry=REGISTRY
)
HASH_MATCHES = Counter("tgwatch_hash_matches", "Media that matched a hash list, by signal type", ["signal"],
                       registry=REGISTRY)  # fmt: skip
RUNS = Counter("tgwatch_runs", "Crawl runs finished, by method and status", ["method", "status"], registry=REGISTRY)
RUN_DURATION = Histogram(
    "tgwatch_run_duration_seconds", "Wall time of one crawl run", ["method"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200), registry=REGISTRY,
)  # fmt: skip
TASKS = Counter(
    "tgwatch_crawl_tasks", "Crawl task transitions seen by this process (created, skipped, acked, nacked …)",
    ["event"], registry=REGISTRY,
)  # fmt: skip
QUEUE_DEPTH = Gauge("tgwatch_queue_depth", "Jobs per queue and state (read at scrape time)", ["queue", "state"],
                    registry=REGISTRY)  # fmt: skip
TAKEDOWN_REQUESTS = Gauge(
    "tgwatch_takedown_requests", "Takedown requests by status (read at scrape time)", ["status"], registry=REGISTRY
)
TAKEDOWN_ITEMS = Gauge(
    "tgwatch_takedown_items", "Reported items by removal status (read at scrape time)", ["status"], registry=REGISTRY
)
TAKEDOWN_OVERDUE = Gauge(
    "tgwatch_takedown_overdue", "Sent requests with an item still up past the overdue limit", registry=REGISTRY
)
TAKEDOWN_UNSENT = Gauge("tgwatch_takedown_unsent", "Takedown requests not sent yet", registry=REGISTRY)
TAKEDOWN_REMOVED_SHARE = Gauge(
    "tgwatch_takedown_removed_share",
    "Share of reported items removed within the window after sending, among items sent at least that long ago "
    "(NaN while none is that old)",
    ["window"], registry=REGISTRY,
)  # fmt: skip
TAKEDOWN_REMOVED_ELIGIBLE = Gauge(
    "tgwatch_takedown_removed_eligible", "Items sent at least the window ago (the share's denominator)", ["window"],
    registry=REGISTRY,
)  # fmt: skip
TAKEDOWN_REMOVAL_SECONDS = Gauge(
    "tgwatch_takedown_removal_seconds", "Time from sending a request to finding an item removed (NaN: none yet)",
    ["quantile"], registry=REGISTRY,
)  # fmt: skip
TAKEDOWN_DETECTION_SECONDS = Gauge(
    "tgwatch_takedown_detection_to_request_seconds",
    "Time from detection (alert or first sighting) to the takedown request (NaN: none yet)",
    ["quantile"], registry=REGISTRY,
)  # fmt: skip
RUNNING = Gauge("tgwatch_runs_in_progress", "Crawl runs running in this process", ["method"], registry=REGISTRY)


#: label values known in advance, exported at 0 so dashboards and alerts see every series at once
METHODS = ("web", "mtproto")
ERROR_KINDS = ("source", "rate_limited", "access_denied", "not_found", "bad_page", "media", "too_large",
               "undecodable", "bomb", "store", "not_authorized", "config")  # fmt: skip
SIGNALS = ("sha256", "md5", "pdq", "vpdq")
for _m in METHODS:
    PAGES_FETCHED.labels(_m)
    FLOOD_WAITS.labels(_m)
    MEDIA_REFS.labels(_m)
for _k in ERROR_KINDS:
    ERRORS.labels(_k)
for _s in SIGNALS:
    HASH_MATCHES.labels(_s)


def count_page(method: str, n: int = 1) -> None:
    PAGES_FETCHED.labels(method).inc(n)


def count_messages(method: str, new: int = 0, updated: int = 0) -> None:
    if new:
        MESSAGES_INGESTED.labels(method, "new").inc(new)
    if updated:
        MESSAGES_INGESTED.labels(method, "updated").inc(updated)


def count_error(kind: str) -> None:
    ERRORS.labels(kind or "error").inc()


def count_flood_wait(method: str, seconds: float = 0.0) -> None:
    FLOOD_WAITS.labels(method).inc()
    if seconds > 0:
        FLOOD_WAIT_SECONDS.labels(method).inc(seconds)


def count_hash_match(signal: str) -> None:
    """One media matched a hash list by ``signal`` (sha256, md5, pdq, vpdq). The list's name is not
    a label: lists come and go, and a label per list would grow without bound."""
    HASH_MATCHES.labels(signal).inc()


def count_task(event: str) -> None:
    TASKS.labels(event).inc()


def observe_run(method: str, status: str, seconds: float) -> None:
    RUNS.labels(method, status).inc()
    RUN_DURATION.labels(method).observe(max(seconds, 0.0))


def set_queue_depth(queue: str, stats: Mapping[str, Any]) -> None:
    for state in ("ready", "leased", "done", "dead"):
        value = stats.get(state)
        if isinstance(value, int | float):
            QUEUE_DEPTH.labels(queue, state).set(value)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every tgwatch metric and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
