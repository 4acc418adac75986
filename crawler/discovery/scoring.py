"""Score a candidate's title, description and discovery context against a multi-language term list.

Why a plain weighted term count: staff must be able to read *why* a room scored high (the matched
terms are stored with the score) and to tune the list without retraining anything. The list lives
in ``config/terms.toml`` (Korean, English, Japanese, Chinese, Russian, Spanish shipped).

Matching: NFKC-normalised and case-folded text. A term in Latin or Cyrillic script matches at a
word start ("leak" in "leaked", not in "bleak"); other scripts match anywhere, because Korean,
Japanese and Chinese words carry particles and are not space-delimited. A term counts once per field.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from config.discovery import DEFAULT_TERMS_FILE
from foundation.errors import ConfigError


class FieldWeights(BaseModel):
    model_config = {"extra": "forbid"}

    title: float = Field(1.0, ge=0)
    description: float = Field(0.7, ge=0)
    context: float = Field(0.5, ge=0)


class TermList(BaseModel):
    model_config = {"extra": "forbid"}

    fields: FieldWeights = Field(default_factory=FieldWeights)
    terms: dict[str, dict[str, float]] = Field(default_factory=dict)  # language → term → weight


def load_terms(path: Path | None = None) -> TermList:
    path = path or DEFAULT_TERMS_FILE
    try:
        return TermList.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read term list {path}: {exc}") from exc
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"invalid term list {path}: {exc}") from exc


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _word_start_script(term: str) -> bool:
    """Latin/Cyrillic/Greek terms match at a word start; everything else anywhere."""
    return all(ord(ch) < 0x0590 for ch in term if ch.isalpha())


@dataclass(frozen=True)
class Match:
    term: str
    lang: str
    field: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {"term": self.term, "lang": self.lang, "field": self.field, "weight": self.weight}


@dataclass(frozen=True)
class Score:
    value: float
    matches: tuple[Match, ...]


class Scorer:
    def __init__(self, terms: TermList) -> None:
        self.weights = terms.fields
        self._patterns: list[tuple[str, str, float, re.Pattern[str]]] = []
        for lang, table in terms.terms.items():
            for term, weight in table.items():
                folded = _fold(term)
                body = r"\s+".join(re.escape(part) for part in folded.split())
                pattern = re.compile(rf"(?<!\w){body}" if _word_start_script(folded) else body)
                self._patterns.append((term, lang, weight, pattern))

    @classmethod
    def from_file(cls, path: Path | None = None) -> Scorer:
        return cls(load_terms(path))

    def _field(self, name: str, text: str) -> list[Match]:
        folded = _fold(text)
        return [Match(term, lang, name, weight) for term, lang, weight, p in self._patterns if p.search(folded)]

    def score(self, title: str | None, description: str | None, context: Iterable[str] = ()) -> Score:
        matches: list[Match] = []
        total = 0.0
        fields = (
            ("title", title or "", self.weights.title),
            ("description", description or "", self.weights.description),
            ("context", "\n".join(context), self.weights.context),
        )
        for name, text, field_weight in fields:
            if not text:
                continue
            found = self._field(name, text)
            matches.extend(found)
            total += field_weight * sum(m.weight for m in found)
        return Score(round(total, 3), tuple(matches))
