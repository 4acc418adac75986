"""What happens when an alert is raised: nothing (``manual``), a drafted request (``draft``) or a
request sent at once (``auto``).

Why one function decides: sending without a person looking is only acceptable when a mistake is
very unlikely — an exact match on a list someone vouched for (``trusted``, set by an admin). A
classifier verdict or a watchlist hit is a guess, so it is never sent unseen, whatever a list or a
setting says. ``check_policy`` refuses such a setting when it is made; ``effective_policy`` applies
the same rule again when an alert arrives (a stored setting could predate the rule).
"""

from __future__ import annotations

from enum import StrEnum

from foundation.errors import TgwatchError


class TakedownPolicy(StrEnum):
    MANUAL = "manual"  # staff create requests themselves (the alert only informs)
    DRAFT = "draft"  # a request is drafted at once and waits for one click in the review queue
    AUTO = "auto"  # sent at once through the configured senders, without review


#: alert kinds that come from a guess (a classifier, a watchlist): at most ``draft``
GUESS_KINDS = frozenset({"detection", "watchlist", "watchlist_match"})
#: alert kinds a person reviews before anything is done, not even a draft: a consenting person's
#: face found by the watchlist (docs/watchlist.md); only ``manual`` is allowed
REVIEW_ONLY_KINDS = frozenset({"watchlist_match"})


class PolicyRefused(TgwatchError):
    kind = "takedown_policy_refused"


def check_policy(policy: TakedownPolicy | str, *, trusted: bool, alert_kind: str = "hash_match") -> TakedownPolicy:
    """The policy if it may be set for this list/alert kind, else ``PolicyRefused`` saying why."""
    try:
        chosen = TakedownPolicy(policy)
    except ValueError:
        raise PolicyRefused(f"unknown takedown policy {policy!r} (manual, draft or auto)",
                            code="policy.unknown", params={"value": str(policy)}) from None  # fmt: skip
    if alert_kind in REVIEW_ONLY_KINDS and chosen is not TakedownPolicy.MANUAL:
        raise PolicyRefused(
            f"{alert_kind} alerts go to human review only: no policy drafts or sends for them (only 'manual')",
            code="policy.review_only", params={"kind": alert_kind},
        )  # fmt: skip
    if chosen is TakedownPolicy.AUTO:
        if alert_kind in GUESS_KINDS:
            raise PolicyRefused(f"'auto' is never allowed for {alert_kind} alerts: a person reviews them (use 'draft')",
                                code="policy.auto_never", params={"kind": alert_kind})  # fmt: skip
        if not trusted:
            raise PolicyRefused("'auto' needs a trusted list (an admin marks it --trusted); use 'draft'",
                                code="policy.auto_needs_trusted")  # fmt: skip
    return chosen


def effective_policy(policy: str | None, *, trusted: bool, alert_kind: str) -> TakedownPolicy:
    """What to do for an alert now: the stored policy, lowered to ``draft`` where ``auto`` is not allowed."""
    try:
        return check_policy(policy or TakedownPolicy.MANUAL, trusted=trusted, alert_kind=alert_kind)
    except PolicyRefused:
        if alert_kind in REVIEW_ONLY_KINDS:
            return TakedownPolicy.MANUAL
        return TakedownPolicy.DRAFT if policy == TakedownPolicy.AUTO else TakedownPolicy.MANUAL
