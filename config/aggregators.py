"""Aggregator site rules: how to read a site that advertises Telegram links, as data, not code.

Why: invite-link directories come and go; staff must be able to add one by writing a TOML table
(``config/aggregators.toml`` ships the rules for the bundled synthetic aggregator). A site without
rules is still crawled with ``SiteRule.generic``: every Telegram link on the page, with the text
of its nearest enclosing block as context.

A rule says (CSS selectors are Scrapy/parsel CSS, ``::attr(href)`` and ``::text`` allowed)::

    [[site]]
    name = "sample_directory"                  # what `tgwatch crawl aggregator NAME` takes
    start_urls = ["/directory/"]               # absolute, or relative to base_url
    base_url = "http://127.0.0.1:8080"         # optional; `--base-url` overrides it
    url_patterns = ['^https?://[^/]+/directory/']  # a URL given on the command line picks this rule
    item = "article.listing"                   # one listing block; unset = nearest enclosing block
    link = "a.join::attr(href)"                # hrefs inside an item (comma-separated selectors ok)
    link_pattern = 't\\.me/\\S+'               # optional regex over the item's text, for unlinked links
    mentions = true                            # also take bare @mentions in the item's text
    follow = ["a.next::attr(href)"]            # pagination, category and tag pages to follow
    max_pages = 30
    [site.context]                             # context kept with each link
    title = "h2"
    description = "p.desc"
    category = ".category"
    tags = "ul.tags li"                        # every match is one tag

This module imports nothing else of tgwatch (``config`` rule); loading errors are ``RulesError``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urljoin

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

DEFAULT_RULES_FILE = Path(__file__).with_name("aggregators.toml")
GENERIC_NAME = "generic"
#: pagination a generic page usually marks with rel=next
GENERIC_FOLLOW = ('a[rel~="next"]::attr(href)', 'link[rel~="next"]::attr(href)')


class RulesError(ValueError):
    """The rules file is missing, not TOML, or a rule is invalid (the message names the rule)."""


class ContextRule(BaseModel):
    model_config = {"extra": "forbid"}

    title: str | None = None
    description: str | None = None
    category: str | None = None
    tags: str | None = None


class SiteRule(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    title: str = ""
    start_urls: list[str] = Field(min_length=1)
    base_url: str | None = None
    url_patterns: list[str] = Field(default_factory=list)
    item: str | None = None
    link: str = "a::attr(href)"
    link_pattern: str | None = None
    mentions: bool = False
    follow: list[str] = Field(default_factory=list)
    max_pages: int = Field(30, ge=1)
    context: ContextRule = Field(default_factory=ContextRule)

    @field_validator("url_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"url pattern {pattern!r} is not a regex: {exc}") from exc
        return value

    @field_validator("link_pattern")
    @classmethod
    def _link_pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"link_pattern {value!r} is not a regex: {exc}") from exc
        return value

    @property
    def is_generic(self) -> bool:
        return self.item is None

    def matches(self, url: str) -> bool:
        return any(re.search(pattern, url) for pattern in self.url_patterns)

    def resolved_start_urls(self, base_url: str | None = None) -> list[str]:
        """Start URLs made absolute against ``base_url`` (argument first, then the rule's own)."""
        base = base_url or self.base_url
        out: list[str] = []
        for url in self.start_urls:
            if "://" in url:
                out.append(url)
            elif base:
                out.append(urljoin(base.rstrip("/") + "/", url.lstrip("/")))
            else:
                raise RulesError(f"site {self.name!r}: start URL {url!r} is relative and no base URL is known")
        return out

    @classmethod
    def generic(cls, url: str, *, max_pages: int = 5) -> SiteRule:
        """The rule for a site nobody wrote rules for: every Telegram link, nearest block as context."""
        return cls(name=GENERIC_NAME, start_urls=[url], follow=list(GENERIC_FOLLOW), max_pages=max_pages)


class AggregatorRules(BaseModel):
    model_config = {"extra": "forbid"}

    site: list[SiteRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> AggregatorRules:
        names = [rule.name for rule in self.site]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique; repeated: {dupes}")
        if GENERIC_NAME in names:
            raise ValueError(f"{GENERIC_NAME!r} is reserved for the built-in generic rule")
        return self

    def by_name(self, name: str) -> SiteRule | None:
        return next((rule for rule in self.site if rule.name == name), None)

    def for_url(self, url: str) -> SiteRule | None:
        return next((rule for rule in self.site if rule.matches(url)), None)

    def resolve(self, name_or_url: str, *, max_pages: int = 5) -> tuple[SiteRule, list[str] | None]:
        """``NAME`` → its rule (start URLs from the rule); ``URL`` → the matching rule, else generic.

        The second element is the start URLs to use instead of the rule's own (a URL was given).
        """
        rule = self.by_name(name_or_url)
        if rule is not None:
            return rule, None
        if "://" not in name_or_url:
            known = ", ".join(r.name for r in self.site) or "none"
            raise RulesError(f"no aggregator site named {name_or_url!r} (known: {known}); give a URL instead")
        matched = self.for_url(name_or_url)
        if matched is not None:
            return matched, [name_or_url]
        return SiteRule.generic(name_or_url, max_pages=max_pages), None


def load_rules(path: Path | None = None) -> AggregatorRules:
    """Read and validate a rules file (default: the shipped ``config/aggregators.toml``)."""
    path = path or DEFAULT_RULES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"cannot read aggregator rules {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"aggregator rules {path} are not valid TOML: {exc}") from exc
    try:
        return AggregatorRules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"invalid aggregator rules in {path}: {exc}") from exc
