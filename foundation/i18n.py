"""Words people read, in Korean and English, from gettext catalogs read at run time.

Why ``.po`` files read with Babel instead of compiled ``.mo``: translators edit one text file per
language and there is no build step that could leave a stale binary behind. Message ids are
symbolic (``notify.kind.hash_match``) so every language, English included, has a catalog entry,
and a test can check that each id is translated. Parameters use ``str.format`` names:
``gettext("ko", "notify.digest.subject", count=3)``. Logs and the command line stay English.
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("ko", "en")
DEFAULT_LANGUAGE = "ko"
DOMAIN = "tgwatch"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@functools.cache
def catalog(lang: str) -> Catalog:
    """The catalog of ``lang`` (read once per process)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r} (supported: {', '.join(LANGUAGES)})")
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def translated(lang: str, msgid: str) -> str | None:
    """The translation of ``msgid`` in ``lang``, or None when the catalog has none."""
    message = catalog(lang).get(msgid)
    if message is None or not message.string or not isinstance(message.string, str):
        return None
    return message.string


def gettext(lang: str, msgid: str, **params: object) -> str:
    """``msgid`` in ``lang`` (falling back to English, then to the id itself), with ``params`` filled in."""
    text = translated(lang, msgid) or translated("en", msgid) or msgid
    return text.format(**params) if params else text


def msgids(prefix: str = "") -> list[str]:
    """Every message id of the English catalog that starts with ``prefix``."""
    return sorted(str(m.id) for m in catalog("en") if m.id and str(m.id).startswith(prefix))
