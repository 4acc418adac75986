"""Hash exchanges through python-threatexchange: StopNCII, NCMEC hash sharing, Meta ThreatExchange.

The field's own library speaks the exchanges (requests, pagination, retries, checkpoints, the
record formats); tgwatch does not re-implement any of it. What is here is the thin adapter from the
library's ``SignalExchangeAPI`` deltas to tgwatch's lists: each exchange yields :class:`Page` s of
entries to add and entries to remove, with a JSON checkpoint after every page, and sends reviewers'
verdicts back where the exchange takes feedback.

Where the library falls short, the adapter says so:

- StopNCII: ``StopNCIISignalExchangeAPI.fetch_iter`` (1.2.17) compares ``hashValue`` instead of
  ``hashStatus`` against Withdrawn/Deleted, so withdrawn hashes are *never* deleted through it. The
  adapter therefore reads pages through the library's own client (``StopNCIIAPI.fetch_hashes_iter``)
  and checkpoint (``StopNCIICheckpoint``), and removes a record whose ``hashStatus`` is Withdrawn or
  Deleted, as StopNCII asks.
- NCMEC: ``NCMECHashAPI`` takes only a fixed environment URL; the adapter sets the client's base
  URL when an override is configured (a mirror, the tests' local server).
- ThreatExchange: used as is (``endpoint_override``), with the ``fetch_value_merge`` rule that a
  ``None`` record (``should_delete``) is a deletion.

The library's HTTP is blocking (requests); callers run :meth:`Exchange.pages` in a thread. Its
requests do not go through tgwatch's aiohttp egress guard, so every base URL is checked by
:func:`check_endpoint` (scheme, host, resolved addresses) before the first request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config import Settings
from crawler.hashing import signals
from foundation.egress import EgressPolicy
from foundation.errors import ConfigError

#: exchange names, in sync order
EXCHANGES = ("stopncii", "ncmec", "threatexchange")
#: reviewers' verdicts on a match → what the exchange is told
VERDICTS = ("unreviewed", "confirmed", "rejected")
_TE_TYPES = {"hash_pdq": "pdq", "hash_md5": "md5", "hash_video_md5": "md5", "video_hash_md5": "md5",
             "hash_sha256": "sha256"}  # fmt: skip
_LIB_TYPES = {"pdq": "pdq", "video_md5": "md5"}


class ExchangeUnavailable(ConfigError):
    """The exchange is not configured, or its library is not installed."""


@dataclass(frozen=True)
class Entry:
    signal_type: str  # tgwatch's signal type name, value normalised by it
    value: str
    label: str | None = None
    key: str | None = None  # the exchange's record key (NCMEC "<member>-<id>")


@dataclass
class Page:
    """One fetched page: what to add, what to remove, and where to resume."""

    add: list[Entry] = field(default_factory=list)
    remove_values: list[tuple[str, str]] = field(default_factory=list)
    remove_keys: list[str] = field(default_factory=list)
    skipped: int = 0  # records of types tgwatch does not match, or invalid values
    checkpoint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Feedback:
    signal_type: str
    value: str
    verdict: str  # one of VERDICTS


class Exchange(Protocol):
    name: str
    list_name: str
    base_url: str

    def pages(self, checkpoint: dict[str, Any] | None) -> Iterator[Page]:
        """Fetch from the checkpoint (None: from the start); blocking."""
        ...

    def send_feedback(self, items: Sequence[Feedback]) -> int:
        """Tell the exchange what reviewers decided; how many were sent (0 when it takes none)."""
        ...


def _normalised(signal_type: str, value: str) -> str | None:
    try:
        return signals.get(signal_type).validate(value)
    except ValueError:
        return None


def _require_library() -> None:
    try:
        import threatexchange  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ExchangeUnavailable(
            "hash exchanges need python-threatexchange: pip install 'tgwatch[exchanges]'"
        ) from exc


# -- StopNCII ------------------------------------------------------------------------------------
class StopNCIIExchange:
    name = "stopncii"

    def __init__(self, settings: Settings) -> None:
        _require_library()
        from threatexchange.exchanges.clients.stopncii import api

        cfg = settings.exchanges.stopncii
        if not cfg.configured or cfg.fetch_key is None or cfg.subscription_key is None:
            raise ExchangeUnavailable(
                "StopNCII is not configured: set TGWATCH_EXCHANGES__STOPNCII__FETCH_KEY and __SUBSCRIPTION_KEY"
            )
        self.list_name = cfg.list
        self.base_url = cfg.base_url or api.StopNCIIAPI.BASE_URL
        extra = {}
        if cfg.feedback_key is not None:
            extra[api.StopNCIIEndpoint.SubmitFeedback] = cfg.feedback_key.get_secret_value()
        self._client = api.StopNCIIAPI(
            cfg.subscription_key.get_secret_value(),
            cfg.fetch_key.get_secret_value(),
            additional_function_keys=extra,
            base_url_override=self.base_url,
        )
        self._can_feedback = cfg.feedback_key is not None

    def pages(self, checkpoint: dict[str, Any] | None) -> Iterator[Page]:
        from threatexchange.exchanges.clients.stopncii import api
        from threatexchange.exchanges.impl.stop_ncii_api import StopNCIICheckpoint

        start = int((checkpoint or {}).get("update_time", api.StopNCIIAPI.DEFAULT_START_TIME))
        dropped = {api.StopNCIICaseStatus.Withdrawn, api.StopNCIICaseStatus.Deleted}
        types = {api.StopNCIISignalType.ImagePDQ: "pdq", api.StopNCIISignalType.VideoMD5: "md5"}
        for response in self._client.fetch_hashes_iter(start_timestamp=start):
            page = Page(checkpoint=dataclasses.asdict(StopNCIICheckpoint.from_stopncii_fetch(response)))
            for record in response.hashRecords:
                kind = types.get(record.signalType)
                value = _normalised(kind, record.hashValue) if kind else None
                if kind is None or value is None:
                    page.skipped += 1
                elif record.hashStatus in dropped:
                    page.remove_values.append((kind, value))
                else:
                    cases = ",".join(sorted(record.caseNumbers)) or None
                    page.add.append(Entry(kind, value, cases))
            yield page

    def send_feedback(self, items: Sequence[Feedback]) -> int:
        from threatexchange.exchanges.clients.stopncii import api

        if not self._can_feedback or not items:
            return 0
        values = {
            "unreviewed": api.StopNCIICSPFeedbackValue.PendingReview,
            "confirmed": api.StopNCIICSPFeedbackValue.Blocked,
            "rejected": api.StopNCIICSPFeedbackValue.NotBlocked,
        }
        types = {"pdq": api.StopNCIISignalType.ImagePDQ, "md5": api.StopNCIISignalType.VideoMD5}
        batch = {
            (types[f.signal_type], f.value): api.StopNCIICSPFeedback(values[f.verdict], {"tgwatch"})
            for f in items
            if f.signal_type in types
        }
        if batch:
            self._client.submit_feedbacks(batch)
        return len(batch)


# -- NCMEC ---------------------------------------------------------------------------------------
class NCMECExchange:
    name = "ncmec"

    def __init__(self, settings: Settings) -> None:
        _require_library()
        from threatexchange.exchanges.clients.ncmec import hash_api
        from threatexchange.exchanges.impl import ncmec_api

        cfg = settings.exchanges.ncmec
        if not cfg.configured or cfg.user is None or cfg.password is None:
            raise ExchangeUnavailable("NCMEC is not configured: set TGWATCH_EXCHANGES__NCMEC__USER and __PASSWORD")
        try:
            environment = hash_api.NCMECEnvironment[cfg.environment]
        except KeyError:
            known = ", ".join(e.name for e in hash_api.NCMECEnvironment)
            raise ExchangeUnavailable(f"unknown NCMEC environment {cfg.environment!r}; known: {known}") from None
        self.list_name = cfg.list
        self.base_url = (cfg.base_url or environment.value).rstrip("/")
        base_url = self.base_url

        class _API(ncmec_api.NCMECSignalExchangeAPI):
            def get_client(self, environment: hash_api.NCMECEnvironment) -> hash_api.NCMECHashAPI:
                client = super().get_client(environment)
                client._base_url = base_url  # the library takes only its fixed environment URLs
                return client

        collab = ncmec_api.NCMECCollabConfig(name=self.list_name, environment=environment)
        self._api = _API(collab, cfg.user, cfg.password.get_secret_value())

    def pages(self, checkpoint: dict[str, Any] | None) -> Iterator[Page]:
        from threatexchange.exchanges.clients.ncmec import hash_api
        from threatexchange.exchanges.impl import ncmec_api

        resume = None
        if checkpoint:
            paging = checkpoint.get("paging_info")
            resume = ncmec_api.NCMECCheckpoint(
                int(checkpoint["get_entries_max_ts"]),
                ncmec_api._NCMECPagingInfo(**paging) if paging else None,
            )
        types = {(hash_api.NCMECEntryType.image, "pdq"): "pdq", (hash_api.NCMECEntryType.image, "md5"): "md5",
                 (hash_api.NCMECEntryType.video, "md5"): "md5"}  # fmt: skip
        for delta in self._api.fetch_iter([], resume):
            page = Page(checkpoint=dataclasses.asdict(delta.checkpoint))
            for key, entry in delta.updates.items():
                merged = self._api.fetch_value_merge(None, entry)  # the library's rule: a tombstone deletes
                if merged is None:
                    page.remove_keys.append(key)
                    continue
                for fp_type, fp_value in merged.fingerprints.items():
                    kind = types.get((merged.entry_type, fp_type.lower()))
                    value = _normalised(kind, fp_value) if kind else None
                    if kind is None or value is None:
                        page.skipped += 1
                    else:
                        page.add.append(Entry(kind, value, merged.classification, key))
            yield page

    def send_feedback(self, items: Sequence[Feedback]) -> int:
        return 0  # NCMEC feedback needs its entry ids and reason GUIDs: not wired (see docs)


# -- Meta ThreatExchange -------------------------------------------------------------------------
class ThreatExchangeExchange:
    name = "threatexchange"

    def __init__(self, settings: Settings, privacy_group: int) -> None:
        _require_library()
        from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI
        from threatexchange.exchanges.impl import fb_threatexchange_api as te

        cfg = settings.exchanges.threatexchange
        if cfg.access_token is None:
            raise ExchangeUnavailable(
                "ThreatExchange is not configured: set TGWATCH_EXCHANGES__THREATEXCHANGE__ACCESS_TOKEN"
            )
        self.list_name = f"{cfg.list_prefix}{privacy_group}"
        self.base_url = (cfg.base_url or ThreatExchangeAPI._TE_BASE_URL).rstrip("/")
        client = ThreatExchangeAPI(cfg.access_token.get_secret_value(), endpoint_override=self.base_url)
        collab = te.FBThreatExchangeCollabConfig(name=self.list_name, privacy_group=privacy_group)
        self._api = te.FBThreatExchangeSignalExchangeAPI(client, collab)

    def pages(self, checkpoint: dict[str, Any] | None) -> Iterator[Page]:
        from threatexchange.exchanges.impl import fb_threatexchange_api as te

        resume = te.FBThreatExchangeCheckpoint(**checkpoint) if checkpoint else None
        for delta in _until_empty(self._api.fetch_iter([], resume)):
            page = Page(checkpoint=dataclasses.asdict(delta.checkpoint))
            for (threat_type, indicator), record in delta.updates.items():
                kind = _TE_TYPES.get(str(threat_type).lower())
                value = _normalised(kind, indicator) if kind else None
                if kind is None or value is None:
                    page.skipped += 1
                elif self._api.fetch_value_merge(None, record) is None:
                    page.remove_values.append((kind, value))
                else:
                    tags = sorted({t for o in record.opinions for t in o.tags}) if record else []
                    page.add.append(Entry(kind, value, ",".join(tags) or None))
            yield page

    def send_feedback(self, items: Sequence[Feedback]) -> int:
        return 0  # reactions need descriptor ids: not wired (see docs)


def _until_empty(deltas: Iterator[Any]) -> Iterator[Any]:
    """The library asserts on an empty ``/threat_updates`` page ("empty update?"), which is what the
    API answers when nothing changed since the checkpoint: that is the end, not an error."""
    try:
        yield from deltas
    except AssertionError as exc:
        if "empty update" not in str(exc):
            raise


def configured(settings: Settings, only: str | None = None) -> list[Exchange]:
    """Every configured exchange (ThreatExchange: one per privacy group), or just ``only``; an
    exchange named in ``only`` but not configured is an :class:`ExchangeUnavailable`."""
    if only is not None and only not in EXCHANGES:
        raise ExchangeUnavailable(f"unknown exchange {only!r}; known: {', '.join(EXCHANGES)}")
    cfg = settings.exchanges
    out: list[Exchange] = []
    if only in (None, "stopncii") and (cfg.stopncii.configured or only == "stopncii"):
        out.append(StopNCIIExchange(settings))
    if only in (None, "ncmec") and (cfg.ncmec.configured or only == "ncmec"):
        out.append(NCMECExchange(settings))
    if only in (None, "threatexchange") and (cfg.threatexchange.configured or only == "threatexchange"):
        if not cfg.threatexchange.privacy_groups:
            raise ExchangeUnavailable(
                "ThreatExchange: no privacy groups (TGWATCH_EXCHANGES__THREATEXCHANGE__PRIVACY_GROUPS)"
            )
        out += [ThreatExchangeExchange(settings, pg) for pg in cfg.threatexchange.privacy_groups]
    return out


async def check_endpoint(settings: Settings, base_url: str) -> None:
    """The exchange's base URL passes the egress guard: http(s), and a public address unless its host
    is in ``http.allow_private_hosts`` (``EgressDenied`` otherwise). The library's requests resolve
    the name again (a rebinding name could still answer differently: see docs/security.md)."""
    policy = EgressPolicy.from_settings(settings)
    await policy.check_resolved(policy.check_url(base_url))
