"""Typed settings: defaults < TOML file < environment ``TGWATCH_*`` < CLI flags.

Settings are loaded once (``config.load``) and then passed explicitly; no module reads the
environment on its own. Secret values are ``SecretStr`` so that printing or logging a settings
object can never show them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretBytes, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.discovery import DiscoverySettings
from config.errors import ConfigError
from config.evidence import EvidenceSettings
from config.exchanges import ExchangeSettings
from config.notify import NotifySettings, SmtpSettings
from config.server import ApiSettings, ConsoleSettings
from config.takedowns import TakedownSettings
from config.targets import GroupSpec, TargetSpec
from config.watchlist import WatchlistSettings

DEFAULT_CONFIG_FILE = "tgwatch.toml"


class HttpSettings(BaseModel):
    user_agent: str = "tgwatch/0.1 (+https://github.com/tgwatch/tgwatch; monitoring crawler)"
    proxy: str | None = None
    download_timeout: float = Field(30.0, gt=0)
    concurrency_per_domain: int = Field(4, ge=1)
    autothrottle: bool = True
    autothrottle_target_concurrency: float = Field(2.0, gt=0)
    retry_times: int = Field(4, ge=0)
    max_retry_after: float = Field(600.0, ge=0, description="longest Retry-After we honour before giving up")
    #: hosts (names or addresses) that may resolve to private/loopback addresses: a local mirror,
    #: an internal proxy, the test sites. telegram_web_base's host, the proxy and a run's --base-url
    #: are allowed without being listed; every other host must be public (foundation/egress.py)
    allow_private_hosts: list[str] = Field(default_factory=list)


class LimitSettings(BaseModel):
    max_page_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_media_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_video_seconds: float = Field(600.0, gt=0)
    media_fetch_timeout: float = Field(60.0, gt=0)
    max_redirects: int = Field(5, ge=0)


class TelegramSettings(BaseModel):
    api_id: int | None = None
    api_hash: SecretStr | None = None
    #: key that encrypts session strings and phone numbers at rest (urlsafe base64, 32 bytes)
    secrets_key: SecretStr | None = None
    flood_sleep_threshold: int = 0
    request_pacing_seconds: float = Field(0.5, ge=0)
    #: an account's session lease (one process per session); renewed every third of it
    lease_seconds: float = Field(60.0, ge=3)
    #: per account, the least time between two discovery calls (recommendations, global search)
    discovery_interval_seconds: float = Field(20.0, ge=0)


class MediaSettings(BaseModel):
    #: fetch and hash media at crawl time (off only for benchmarks of the bare door)
    fetch: bool = True
    concurrency: int = Field(4, ge=1, le=64)
    #: hashing processes; unset = one per core
    hash_workers: int | None = Field(None, ge=1)
    #: keep the bytes, encrypted, for detection and evidence
    quarantine: bool = True
    #: read text in new images and video keyframes with Tesseract (recorded as unavailable without it)
    ocr: bool = True
    ocr_languages: str = Field("kor+eng", pattern=r"^[a-z_]{3,16}(\+[a-z_]{3,16})*$")
    ocr_timeout_seconds: float = Field(20.0, gt=0, le=600)
    #: screenshot (headless Chromium) the post an alert names, as it is raised; off by default: a
    #: browser per alert is costly, and it fetches the post page again from telegram_web_base
    screenshot_on_alert: bool = False
    screenshot_timeout_seconds: float = Field(45.0, gt=0, le=600)


class MatchingSettings(BaseModel):
    pdq_max_distance: int = Field(31, ge=0, le=128)
    pdq_quality_floor: int = Field(50, ge=0, le=100)
    #: also match rotated and mirrored copies (all eight PDQ dihedral hashes)
    dihedral: bool = False
    vpdq_query_percent: float = Field(80.0, ge=0, le=100)
    vpdq_target_percent: float = Field(0.0, ge=0, le=100)


class DetectionSettings(BaseModel):
    #: which new media become detection jobs: every one, those seen in flagged channels, those that
    #: matched no hash list, or none
    enqueue_policy: Literal["all", "flagged", "unmatched", "off"] = "all"
    detectors: list[str] = Field(default_factory=lambda: ["default"])
    max_attempts: int = Field(5, ge=1)
    lease_seconds: float = Field(120.0, gt=0)
    #: AES-256-GCM key for quarantined media (urlsafe base64 of 32 bytes); unset = a key file
    #: created once under data_dir/keys (0600)
    quarantine_key: SecretStr | None = None
    retention_days: float = Field(30.0, ge=0)
    media_url_ttl_seconds: int = Field(600, ge=10)
    #: a positive verdict adds this to the channel's risk score
    risk_per_positive: float = 10.0


class IngestSettings(BaseModel):
    batch_size: int = Field(500, ge=1)


class TargetPolicySettings(BaseModel):
    """What a crawl may change about a target on its own (``[target_policy]``; ``[[targets]]`` is the list)."""

    #: a target whose web preview is unavailable (no preview, redirect to the profile, "sensitive")
    #: switches to MTProto when an account can read it; None = on when the account pool has accounts
    auto_mtproto: bool | None = None
    #: a bot named in a stored message's button, link or mention becomes a *proposed* web target; once a
    #: monitor or admin approves it, every run of it records the "monthly users" of its t.me page
    track_bots: bool = True
    #: scheduled MTProto runs also read the target's visible stories (``stories.getPeerStories``)
    mtproto_stories: bool = False


class Settings(BaseSettings):
    """Everything tgwatch can be told. ``tgwatch config show`` prints the effective values."""

    model_config = SettingsConfigDict(
        env_prefix="TGWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    mongodb_uri: SecretStr | None = Field(
        None, description="production MongoDB (>= 7, replica set); unset = embedded nx-27017"
    )
    database: str = "tgwatch"
    data_dir: Path = Path(".tgwatch")
    telegram_web_base: str = "https://t.me"
    #: web preview hosts tried in order when ``telegram_web_base`` cannot be reached; None = ``telegram.me``
    #: when the base is ``t.me``, else none (a test or mirror base never falls back to the real host)
    telegram_web_fallbacks: list[str] | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    matching: MatchingSettings = Field(default_factory=MatchingSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    takedowns: TakedownSettings = Field(default_factory=TakedownSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    target_policy: TargetPolicySettings = Field(default_factory=TargetPolicySettings)
    #: scheduled targets and groups from the settings file (``[[targets]]``, ``[groups.NAME]``)
    targets: list[TargetSpec] = Field(default_factory=list)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)
    #: consent-based watchlist (off unless ``watchlist.key`` is set; docs/watchlist.md)
    watchlist: WatchlistSettings = Field(default_factory=WatchlistSettings)
    exchanges: ExchangeSettings = Field(default_factory=ExchangeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _CURRENT_TOML.get("path")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("telegram_web_base")
    @classmethod
    def _web_base_is_http(cls, value: str) -> str:
        """Only http/https leave tgwatch (foundation/egress.py): a ``file://`` base would read the disk."""
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("telegram_web_base must be an http:// or https:// URL with a host")
        return value

    def web_fallbacks(self) -> list[str]:
        """The web preview hosts tried after ``telegram_web_base`` (see ``telegram_web_fallbacks``)."""
        if self.telegram_web_fallbacks is not None:
            return list(self.telegram_web_fallbacks)
        host = (urlsplit(self.telegram_web_base).hostname or "").lower()
        return ["https://telegram.me"] if host == "t.me" else []

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret (and URI password) masked."""
        data: dict[str, Any] = masked_data(self)
        return data


_CURRENT_TOML: dict[str, Path | None] = {"path": None}


MASK = "**********"
#: a field (or dict key, or URL query parameter) whose name contains one of these holds a secret ...
_SECRET_WORDS = ("password", "passwd", "secret", "token", "hash", "credential")
#: ... as does one whose name ends with ``key`` (``secrets_key``, ``apikey``; not ``key_path``)
_URI_NAMES = ("uri", "url", "dsn", "proxy")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*\Z")


def is_secret_name(name: str) -> bool:
    """Whether a setting's name says it holds a secret: ``*password*``, ``*secret*``, ``*token*``,
    ``*hash*``, ``*credential*``, ``*key`` / ``*_keys``. New settings named that way are masked
    without anyone having to remember to list them."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) or lowered.endswith(("key", "keys"))


def masked_data(model: BaseModel) -> Any:
    """``model.model_dump(mode="json")`` with every secret masked, found by walking the model.

    Masked: ``SecretStr`` values (a URI-named one keeps all but its password), every string under
    a name :func:`is_secret_name` accepts (field, dict key, or any ancestor of it), and in every
    other string that is a URL the user-info password and secret-named query parameters
    (:func:`mask_uri`). Nothing else changes.
    """
    return _mask(model, model.model_dump(mode="json"), "", secret=False)


def _mask(raw: Any, dumped: Any, name: str, *, secret: bool) -> Any:
    secret = secret or is_secret_name(name)
    if isinstance(raw, SecretStr | SecretBytes):
        value = raw.get_secret_value()
        if isinstance(value, str) and name.lower().endswith(_URI_NAMES) and _URI.match(value):
            return mask_uri(value)
        return MASK
    if isinstance(raw, BaseModel) and isinstance(dumped, dict):
        out = dict(dumped)
        for field in type(raw).model_fields:
            if field in out:
                out[field] = _mask(getattr(raw, field), out[field], field, secret=secret)
        return out
    if isinstance(raw, dict) and isinstance(dumped, dict):
        return {k: _mask(raw.get(k), v, str(k), secret=secret) for k, v in dumped.items()}
    if isinstance(raw, list | tuple) and isinstance(dumped, list) and len(raw) == len(dumped):
        return [_mask(r, d, name, secret=secret) for r, d in zip(raw, dumped, strict=True)]
    if isinstance(dumped, str):
        if secret and dumped:
            return MASK
        return mask_uri(dumped) if _URI.match(dumped) else dumped
    if isinstance(dumped, list):
        return [_mask(None, d, name, secret=secret) for d in dumped]
    if isinstance(dumped, dict):
        return {k: _mask(None, v, str(k), secret=secret) for k, v in dumped.items()}
    return dumped


def mask_uri(uri: str) -> str:
    """``mongodb://user:pw@host/?token=t`` → ``mongodb://user:****@host/?token=****``.

    The user-info password and every query parameter whose name says secret are masked; a URI
    without either is unchanged.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    # user-info ends at the last "@" before the query (a password may hold "@" or "/"; a query may hold "@")
    at = rest.rfind("@", 0, min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest)))
    if at >= 0:
        user, has_pw, _ = rest[:at].partition(":")
        rest = f"{user}{':****' if has_pw else ''}{rest[at:]}"
    base, qmark, query = rest.partition("?")
    if qmark:
        fragment = ""
        if "#" in query:
            query, _, frag = query.partition("#")
            fragment = "#" + frag
        params = []
        for param in query.split("&"):
            key, eq, _ = param.partition("=")
            params.append(f"{key}=****" if eq and is_secret_name(key) else param)
        rest = base + "?" + "&".join(params) + fragment
    return f"{scheme}://{rest}"


def load(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings.

    ``config_path`` names a TOML file (an error if missing); without it ``./tgwatch.toml`` is read
    when present. ``overrides`` are CLI flags: they win over everything; ``None`` values are ignored
    so unset flags fall through to the lower layers.
    """
    path: Path | None
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
    else:
        env_path = os.environ.get("TGWATCH_CONFIG")
        path = Path(env_path) if env_path else Path(DEFAULT_CONFIG_FILE)
        if not path.is_file():
            path = None
    clean = {k: v for k, v in overrides.items() if v is not None}
    _CURRENT_TOML["path"] = path
    try:
        return Settings(**clean)
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
    finally:
        _CURRENT_TOML["path"] = None
