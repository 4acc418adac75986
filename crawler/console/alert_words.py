"""An alert's summary in the reader's language, built from its structured fields.

Why not the stored ``summary``: it is one English sentence written when the alert was raised (the
command line, the API and the notification payloads keep reading it). The console words each kind
from the fields the raiser stored in ``details`` (and the key, for what older alerts did not store),
through the catalogs' ``console.alert_summary.*`` messages. A kind this module does not know, or an
alert whose fields are missing, is shown as stored: the fallback, never a blank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup

Words = Callable[..., Markup]
Label = Callable[[str, object], str]


def _short(value: object, n: int = 12) -> str:
    return str(value or "")[:n]


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _hash_match(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    if not d.get("list"):
        return None
    text = t("console.alerts.match_summary", sha=_short(a.get("sha256")), list=d["list"],
             signal=d.get("signal_type", ""), distance=_number(d.get("distance", "")))  # fmt: skip
    return text + Markup(" ") + t("console.review.retroactive") if d.get("retroactive") else text


def _detection(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    key = str(a.get("key") or a.get("_id") or "")
    detector = d.get("detector") or (key.split("/", 2)[2] if key.count("/") >= 2 else "")
    if not detector:
        return None
    text = t("console.alert_summary.detection", detector=detector, sha=_short(a.get("sha256")))
    labels = d.get("labels") or {}
    if isinstance(labels, Mapping) and labels:
        top, score = max(labels.items(), key=lambda kv: float(kv[1]) if isinstance(kv[1], int | float) else 0.0)
        if isinstance(score, int | float):
            text += Markup(" ") + t("console.alert_summary.detection_label", label=top, score=f"{score:.2f}")
    return text


def _reupload(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    if d.get("cause") == "back_online" and d.get("item") and d.get("request"):
        return t("console.alert_summary.back_online", item=d["item"], request=d["request"])
    if d.get("original") and d.get("request") and d.get("message"):
        return t("console.alert_summary.reupload", original=d["original"], request=d["request"], message=d["message"],
                 signal=d.get("signal", "—"), distance=_number(d.get("distance", "—")))  # fmt: skip
    return None


def _crawl_failure(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    if not d.get("target"):
        return None
    msgid = "console.alert_summary." + ("crawl_failure_dead" if d.get("status") == "dead" else "crawl_failure")
    return t(msgid, target=d.get("name") or d["target"])


def _target_failure(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    if not d.get("target") or not d.get("status"):
        return None
    state = label("channel_state", d["status"])
    return t("console.alert_summary.target_failure", target=d.get("name") or d["target"], state=state)


def _watchlist(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    return t("console.alert_summary.watchlist_match", sha=_short(a.get("sha256"))) if a.get("sha256") else None


def _quarantine(t: Words, label: Label, a: Mapping[str, Any], d: Mapping[str, Any]) -> Markup | None:
    if not d.get("list") or not d.get("value"):
        return None
    return t("console.alert_summary.hash_list_quarantine", list=d["list"], signal=d.get("signal_type", ""),
             value=_short(d["value"], 16), media=_number(d.get("distinct_media", "—")))  # fmt: skip


KINDS: dict[str, Callable[[Words, Label, Mapping[str, Any], Mapping[str, Any]], Markup | None]] = {
    "hash_match": _hash_match,
    "detection": _detection,
    "reupload": _reupload,
    "crawl_failure": _crawl_failure,
    "target_failure": _target_failure,
    "watchlist_match": _watchlist,
    "hash_list_quarantine": _quarantine,
}


def alert_summary(t: Words, label: Label, alert: Mapping[str, Any]) -> Markup | str:
    """The summary of ``alert`` in the words of ``t``; the stored summary for a kind without words."""
    words = KINDS.get(str(alert.get("kind")))
    details = alert.get("details")
    text = words(t, label, alert, details if isinstance(details, Mapping) else {}) if words else None
    return text if text is not None else str(alert.get("summary") or "—")
