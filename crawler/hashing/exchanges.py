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
  ``None`` record (``should_delete``) is a deletion. Its ``get_json_from_url`` calls the module-level
  ``requests.get`` instead of its own session (marked "Typo? session.get?" in the library): the
  adapter's client uses the session, so its GETs get the session's timeout, retries and guard.
- Feedback: ``SignalExchangeAPI.report_opinion`` is not implemented for NCMEC or ThreatExchange in
  1.2.17 (``report_seen``/true/false positive are commented out), so verdicts go through the
  clients the library has: ``NCMECHashAPI.submit_feedback`` (an upvote or a downvote with a reason
  GUID on the entry's fingerprint) and ``ThreatExchangeAPI.react_to_threat_descriptor``.

The library's HTTP is blocking (requests); callers run :meth:`Exchange.pages` in a thread. Its
requests do not go through tgwatch's aiohttp egress guard: every base URL is checked by
:func:`check_endpoint` (scheme, host, resolved addresses) before the first request, for a clear
early error, and every client's sessions connect only to checked addresses
(:mod:`crawler.hashing.exchange_egress`), so a rebinding name is refused at connection time too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config import Settings
from crawler.hashing import signals
from crawler.hashing.exchange_egress import guard_session
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
    #: the matched entry's exchange record key: NCMEC ``<member>-<entry id>``, ThreatExchange the
    #: comma-separated ids of the other members' descriptors of the indicator
    key: str | None = None
    previous: str | None = None  # the verdict last sent for this match (None: nothing yet)
    #: the key ``previous`` went to (None: not known, a match reported before keys were recorded)
    previous_key: str | None = None


@dataclass
class FeedbackOutcome:
    """What was delivered (each is marked sent, so never sent again) and what failed (tried again
    at the next sync)."""

    sent: list[Feedback] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Exchange(Protocol):
    name: str
    list_name: str
    base_url: str

    def pages(self, checkpoint: dict[str, Any] | None) -> Iterator[Page]:
        """Fetch from the checkpoint (None: from the start); blocking."""
        ...

    def send_feedback(self, items: Sequence[Feedback]) -> FeedbackOutcome:
        """Tell the exchange what reviewers decided (blocking); an item the exchange takes no
        feedback for is neither sent nor an error."""
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
        policy, proxy = EgressPolicy.from_settings(settings), settings.http.proxy

        class _Guarded(api.StopNCIIAPI):
            def _get_session(self, endpoint: api.StopNCIIEndpoint) -> Any:
                return guard_session(super()._get_session(endpoint), policy, proxy=proxy)

        self._client = _Guarded(
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

    def send_feedback(self, items: Sequence[Feedback]) -> FeedbackOutcome:
        from threatexchange.exchanges.clients.stopncii import api

        if not self._can_feedback or not items:
            return FeedbackOutcome()
        values = {
            "unreviewed": api.StopNCIICSPFeedbackValue.PendingReview,
            "confirmed": api.StopNCIICSPFeedbackValue.Blocked,
            "rejected": api.StopNCIICSPFeedbackValue.NotBlocked,
        }
        types = {"pdq": api.StopNCIISignalType.ImagePDQ, "md5": api.StopNCIISignalType.VideoMD5}
        chosen = [f for f in items if f.signal_type in types]
        batch = {
            (types[f.signal_type], f.value): api.StopNCIICSPFeedback(values[f.verdict], {"tgwatch"}) for f in chosen
        }
        if batch:
            self._client.submit_feedbacks(batch)
        return FeedbackOutcome(sent=chosen)


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
        self._environment = environment
        self._feedback_reason = cfg.feedback_reason
        base_url, policy, proxy = self.base_url, EgressPolicy.from_settings(settings), settings.http.proxy

        class _Client(hash_api.NCMECHashAPI):
            def __init__(self, username: str, password: str, environment: hash_api.NCMECEnvironment) -> None:
                super().__init__(username, password, environment)
                self._base_url = base_url  # the library takes only its fixed environment URLs

            def _get_session(self) -> Any:
                return guard_session(super()._get_session(), policy, proxy=proxy)

        class _API(ncmec_api.NCMECSignalExchangeAPI):
            def get_client(self, environment: hash_api.NCMECEnvironment) -> hash_api.NCMECHashAPI:
                super().get_client(environment)  # the library's credential check
                return _Client(self._username, self._password, environment)

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

    def send_feedback(self, items: Sequence[Feedback]) -> FeedbackOutcome:
        """A confirmed match is an upvote, a rejected one a downvote (with ``feedback_reason``, or
        the only reason NCMEC offers for the fingerprint type) on the matched entry's fingerprint;
        NCMEC has no "pending review", so an unreviewed match sends nothing. A new vote replaces
        the previous one (the same resource is PUT)."""
        from threatexchange.exchanges.clients.ncmec import hash_api

        out = FeedbackOutcome()
        fingerprints = {"pdq": hash_api.FingerprintType.pdq, "md5": hash_api.FingerprintType.md5}
        due = [f for f in items if f.verdict in ("confirmed", "rejected") and f.key and f.signal_type in fingerprints]
        if not due:
            return out
        client = self._api.get_client(self._environment)
        for item in due:
            member, _, entry_id = (item.key or "").partition("-")
            fingerprint = fingerprints[item.signal_type]
            try:
                if item.verdict == "confirmed":
                    client.submit_feedback(int(member), entry_id, fingerprint, hash_api.FeedbackType.upvote)
                else:
                    reason = self._reason(client, fingerprint)
                    client.submit_feedback(int(member), entry_id, fingerprint, hash_api.FeedbackType.downvote, reason)
            except Exception as exc:  # one entry's refusal does not stop the others
                out.errors.append(f"NCMEC entry {item.key} {fingerprint.value}: {type(exc).__name__}: {exc}")
                continue
            out.sent.append(item)
        return out

    def _reason(self, client: Any, fingerprint: Any) -> str | None:
        """The configured downvote reason (a GUID or a name NCMEC lists); None lets the library take
        the only reason offered (it refuses when there are several)."""
        if self._feedback_reason is None:
            return None
        wanted = self._feedback_reason.strip().casefold()
        offered: dict[str, str] = client.feedback_reasons(fingerprint)
        for guid, name in offered.items():
            if wanted in (guid.casefold(), name.casefold()):
                return guid
        names = ", ".join(sorted(offered.values())) or "none"
        raise ValueError(f"NCMEC offers no feedback reason {self._feedback_reason!r} (offered: {names})")


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
        policy, proxy = EgressPolicy.from_settings(settings), settings.http.proxy

        class _Client(ThreatExchangeAPI):
            def _get_session(self) -> Any:
                return guard_session(super()._get_session(), policy, proxy=proxy)

            def get_json_from_url(self, url: Any, params: Any = None, *, json_obj_hook: Any = None) -> Any:
                # the library calls the module-level requests.get here (no session, no guard)
                with self._get_session() as session:
                    response = session.get(url, params=params or {})
                    response.raise_for_status()
                    return response.json(object_hook=json_obj_hook)

        self._client = _Client(cfg.access_token.get_secret_value(), endpoint_override=self.base_url)
        collab = te.FBThreatExchangeCollabConfig(name=self.list_name, privacy_group=privacy_group)
        self._api = te.FBThreatExchangeSignalExchangeAPI(self._client, collab)

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
                    page.add.append(Entry(kind, value, ",".join(tags) or None, _descriptors(record)))
            yield page

    def send_feedback(self, items: Sequence[Feedback]) -> FeedbackOutcome:
        """Reactions on the other members' descriptors of the matched indicator: ``SAW_THIS_TOO``
        for a match, then ``HELPFUL`` (confirmed) or ``NOT_HELPFUL`` (rejected); a changed verdict
        first removes the reaction sent before.

        The descriptors are those the latest sync saw for the indicator (``item.key``), so one that
        arrived after the verdict was first sent hears it too; a descriptor that already heard this
        verdict (``previous_key``) is not told again."""
        out = FeedbackOutcome()
        for item in items:
            reaction = _TE_REACTIONS.get(item.verdict)
            descriptors = _ids(item.key)
            if reaction is None or not descriptors:
                continue
            known = _ids(item.previous_key) if item.previous_key is not None else None
            told = set(known or ()) if item.previous == item.verdict else set()
            stale = _TE_REACTIONS[item.previous] if item.previous in ("confirmed", "rejected") else None
            had_stale = set(descriptors if known is None else known)  # unknown: as before, all of them
            try:
                for descriptor in descriptors:
                    if descriptor in told:
                        continue
                    if stale and stale != reaction and descriptor in had_stale:
                        _te_ok(self._client.remove_reaction_from_threat_descriptor(descriptor, stale))
                    _te_ok(self._client.react_to_threat_descriptor(descriptor, reaction))
            except Exception as exc:
                out.errors.append(f"ThreatExchange descriptors {item.key}: {type(exc).__name__}: {exc}")
                continue
            out.sent.append(item)
        return out


def _ids(key: str | None) -> list[str]:
    return [d for d in (key or "").split(",") if d]


_TE_REACTIONS = {"unreviewed": "SAW_THIS_TOO", "confirmed": "HELPFUL", "rejected": "NOT_HELPFUL"}


def _descriptors(record: Any) -> str | None:
    """The ids of the indicator's descriptors by other members (reactions go there; a reaction on
    one's own descriptor means nothing)."""
    ids = sorted(
        {o.descriptor_id for o in record.opinions if not o.is_mine and o.descriptor_id and o.descriptor_id > 0}
    )
    return ",".join(str(i) for i in ids) or None


def _te_ok(result: Any) -> None:
    """The library returns ``[error, exception, body]`` and does not check the HTTP status: the
    Graph API answers ``{"success": true}`` or ``{"error": {...}}``."""
    error, exc, body = result
    if error or exc or not isinstance(body, dict) or not body.get("success"):
        detail = (body or {}).get("error") if isinstance(body, dict) else body
        raise RuntimeError(f"reaction refused: {error or exc or detail}")


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
