"""The root of tgwatch's error tree and the one error ``config`` raises.

Why here: ``config`` is the bottom layer and imports nothing else of tgwatch, yet a bad settings
file must raise the same ``ConfigError`` every caller already catches. So the root and
``ConfigError`` live here and ``foundation.errors`` (the whole tree, documented there) re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping


class TgwatchError(Exception):
    """Base of every error tgwatch raises on purpose."""

    #: short machine-readable kind recorded on runs, records and metrics
    kind: str = "error"

    def __init__(
        self,
        message: str = "",
        *,
        url: str | None = None,
        code: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        #: a person reads this error in their language: ``code`` names the catalog message
        #: ``error.<code>`` and ``params`` fill it in (``message`` stays the English text for logs,
        #: the command line and the API)
        self.code = code
        self.params: dict[str, object] = dict(params or {})

    def to_doc(self) -> dict[str, object]:
        doc: dict[str, object] = {"kind": self.kind, "message": self.message}
        if self.url:
            doc["url"] = self.url
        return doc


class ConfigError(TgwatchError):
    """Settings are missing or contradictory."""

    kind = "config"
