"""The takedown gauges' values: one computation of the removal figures copied into ``foundation.metrics``.

Why here and not in ``foundation.metrics``: the metrics module only declares metrics (it sits in the
foundation, below the features), while this reads the takedown feature's own figures.
"""

from __future__ import annotations

from crawler.takedowns.models import ItemStatus, RequestStatus
from crawler.takedowns.stats import WINDOWS, TakedownStats
from foundation import metrics


def set_takedown_figures(stats: TakedownStats) -> None:
    """Copy one computation of the removal figures into the gauges (every series, every scrape).

    Unknown values are NaN, not 0: "no removal measured yet" must not read as "removed at once".
    """
    for status in RequestStatus:
        metrics.TAKEDOWN_REQUESTS.labels(status.value).set(stats.requests.get(status.value, 0))
    for item_status in ItemStatus:
        metrics.TAKEDOWN_ITEMS.labels(item_status.value).set(stats.items.get(item_status.value, 0))
    metrics.TAKEDOWN_OVERDUE.set(len(stats.overdue))
    metrics.TAKEDOWN_UNSENT.set(stats.unsent)
    for window, _ in WINDOWS:
        share = stats.removed_within_items.get(window)
        metrics.TAKEDOWN_REMOVED_SHARE.labels(window).set(_or_nan(share.share if share else None))
        metrics.TAKEDOWN_REMOVED_ELIGIBLE.labels(window).set(share.eligible if share else 0)
    for gauge, durations in (
        (metrics.TAKEDOWN_REMOVAL_SECONDS, stats.request_to_removal),
        (metrics.TAKEDOWN_DETECTION_SECONDS, stats.detection_to_request),
    ):
        gauge.labels("0.5").set(_or_nan(durations.median))
        gauge.labels("0.9").set(_or_nan(durations.p90))


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
