"""Hash-exchange settings: which exchanges tgwatch syncs from, their credentials, and list hygiene.

Why a model of its own: the exchanges hold victims' hashes and speak for a whole trust-and-safety
field, so what tgwatch asks of them (how often, where, with which keys) and what it does with a list
that suddenly matches far too much must be visible and tunable in one place. Credentials are
``SecretStr`` and come from the environment (``TGWATCH_EXCHANGES__STOPNCII__FETCH_KEY`` …), never a
file in the repository. ``base_url`` overrides exist for tests and private mirrors; their hosts are
allowed past the egress guard only when listed in ``http.allow_private_hosts`` (or public).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from config.targets import parse_duration


class StopNCIISettings(BaseModel):
    fetch_key: SecretStr | None = None  # x-functions-key of FetchHashes
    feedback_key: SecretStr | None = None  # x-functions-key of SubmitFeedback (unset: no feedback sent)
    subscription_key: SecretStr | None = None  # Ocp-Apim-Subscription-Key
    base_url: str | None = None  # unset: https://api.stopncii.org/v1
    list: str = "stopncii"

    @property
    def configured(self) -> bool:
        return self.fetch_key is not None and self.subscription_key is not None


class NCMECSettings(BaseModel):
    user: str | None = None
    password: SecretStr | None = None
    #: python-threatexchange's NCMECEnvironment name (Industry, NGO, test_Industry …)
    environment: str = "Industry"
    base_url: str | None = None  # unset: the environment's URL
    list: str = "ncmec"
    #: the reason sent with a downvote (a rejected match): a GUID or a name from NCMEC's
    #: ``/v2/feedback/<type>/reasons``; unset: the only reason offered (several: an error)
    feedback_reason: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.user) and self.password is not None


class ThreatExchangeSettings(BaseModel):
    access_token: SecretStr | None = None  # "<app id>|<secret>"
    privacy_groups: list[int] = Field(default_factory=list)
    base_url: str | None = None  # unset: https://graph.facebook.com/<version>
    #: list name of privacy group N is "<list_prefix>N"
    list_prefix: str = "te-"

    @property
    def configured(self) -> bool:
        return self.access_token is not None and bool(self.privacy_groups)


class ExchangeSettings(BaseModel):
    stopncii: StopNCIISettings = Field(default_factory=StopNCIISettings)
    ncmec: NCMECSettings = Field(default_factory=NCMECSettings)
    threatexchange: ThreatExchangeSettings = Field(default_factory=ThreatExchangeSettings)
    #: how often the scheduler syncs every configured exchange; 0 = never (``hashes sync`` by hand)
    sync_every: float = 0.0
    #: a list entry matching more than this many distinct media within ``quarantine_window`` is
    #: quarantined (no longer matched) until a reviewer releases it; 0 = never
    quarantine_after: int = Field(25, ge=0)
    quarantine_window: float = 86_400.0

    @field_validator("sync_every", "quarantine_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value
