"""Hash-list file parsers (pure: no database). Every value goes through its signal type's ``validate``.

Parsing never stops at a bad row: :func:`parse` yields a :class:`HashRow` for every good row and a
:class:`RowError` (1-based line number, reason) for every bad one, so an import can keep the good
rows and report the rest. Formats:

``csv``
    Header row ``signal_type,signal[,label]``; ``signal_type`` is one of sha256, md5, pdq, vpdq.
``jsonl``
    One JSON object per line: ``{"signal_type": "pdq", "signal": "<hex>", "label": "optional"}``.
``stopncii``
    StopNCII.org hash-exchange records as its ``FetchHashes`` API returns them (the shape
    python-threatexchange's StopNCII client reads): either the whole response
    ``{"count": N, "hashRecords": [...], ...}``, a JSON list of records, or one record per line.
    A record has ``signalType`` (``ImagePDQ`` → pdq, ``VideoMD5`` → md5; ``VideoTMK``, ``Text``,
    ``URL`` are not supported and reported), ``hashValue``, ``hashStatus`` (``Withdrawn`` and
    ``Deleted`` records are reported, not imported: the exchange asks clients to drop them) and
    ``caseNumbers`` (kept as the label). For a whole-document file the "line" is the record number.
``threatexchange``
    What the ``threatexchange`` CLI prints with ``dataset --print-signals --csv``: header
    ``collab,signal_type,signal_str,category,tags`` (label = ``collab/category`` + tags), or its plain
    ``dataset -P -S`` form, one ``<signal_type> <signal>`` per line. Its type names are mapped
    (``video_md5`` → md5, ``pdq``, ``vpdq``; ThreatExchange indicator types ``HASH_PDQ``,
    ``HASH_MD5``, ``VIDEO_HASH_MD5``, ``HASH_SHA256`` too).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.hashing import signals
from foundation.errors import TgwatchError

FORMATS = ("csv", "jsonl", "stopncii", "threatexchange")
#: a label names a case or a category; anything longer is not a label (a 5 MB one was once stored)
MAX_LABEL_CHARS = 512

_STOPNCII_TYPES = {"imagepdq": "pdq", "videomd5": "md5"}
_STOPNCII_DROPPED = {"withdrawn", "deleted"}
_TE_TYPES = {
    "pdq": "pdq",
    "vpdq": "vpdq",
    "video_md5": "md5",
    "md5": "md5",
    "photo_md5": "md5",
    "sha256": "sha256",
    "hash_pdq": "pdq",
    "hash_md5": "md5",
    "video_hash_md5": "md5",
    "hash_sha256": "sha256",
}


class HashListFileError(TgwatchError):
    """The file as a whole cannot be read as a hash list (binary, not UTF-8)."""

    kind = "hash_list"


@dataclass(frozen=True)
class HashRow:
    line: int
    signal_type: str
    signal: str  # normalised by the signal type
    label: str | None = None


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ParsedList:
    rows: list[HashRow]
    errors: list[RowError]


def _row(line: int, type_name: object, value: object, label: object = None) -> HashRow | RowError:
    if not isinstance(type_name, str) or not type_name.strip():
        return RowError(line, f"missing signal_type (got {type_name!r})")
    try:
        kind = signals.get(type_name)
        if not isinstance(value, str):
            raise ValueError(f"signal must be a string, got {value!r}")
        normalised = kind.validate(value)
    except ValueError as exc:
        return RowError(line, str(exc))
    text_label = None if label in (None, "") else str(label)
    if text_label is not None and len(text_label) > MAX_LABEL_CHARS:
        return RowError(line, f"label is {len(text_label)} characters long; the limit is {MAX_LABEL_CHARS}")
    return HashRow(line, kind.name, normalised, text_label)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def parse_csv(text: str) -> Iterator[HashRow | RowError]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip().lower() for f in fields]
            if header[:2] != ["signal_type", "signal"]:
                yield RowError(line, f"header must start with 'signal_type,signal', got {','.join(fields)!r}")
                return
            continue
        if len(fields) < 2:
            yield RowError(line, f"expected at least 2 columns, got {len(fields)}")
            continue
        label = fields[2] if len(fields) > 2 and "label" in header[2:3] else None
        yield _row(line, fields[0], fields[1], label)
    if header is None:
        yield RowError(1, "empty file: no 'signal_type,signal' header")


def parse_jsonl(text: str) -> Iterator[HashRow | RowError]:
    for line, raw in _lines(text):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield RowError(line, f"not JSON: {exc.msg}")
            continue
        except RecursionError:
            yield RowError(line, "not JSON: nested too deeply")
            continue
        if not isinstance(obj, dict):
            yield RowError(line, "expected a JSON object")
            continue
        yield _row(line, obj.get("signal_type"), obj.get("signal"), obj.get("label"))


def _stopncii_record(line: int, rec: Any) -> HashRow | RowError:
    if not isinstance(rec, dict):
        return RowError(line, "expected a StopNCII hash record object")
    kind = str(rec.get("signalType", "")).strip()
    mapped = _STOPNCII_TYPES.get(kind.lower())
    if mapped is None:
        return RowError(line, f"unsupported StopNCII signalType {kind!r} (supported: ImagePDQ, VideoMD5)")
    status = str(rec.get("hashStatus", "")).strip()
    if status.lower() in _STOPNCII_DROPPED:
        return RowError(line, f"hashStatus {status!r}: withdrawn by the exchange, not imported")
    cases = rec.get("caseNumbers")
    label = ",".join(sorted(map(str, cases))) if isinstance(cases, dict | list) and cases else None
    return _row(line, mapped, rec.get("hashValue"), label)


def parse_stopncii(text: str) -> Iterator[HashRow | RowError]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            doc = None  # not one document: one record per line
        if doc is not None:
            records = doc.get("hashRecords") if isinstance(doc, dict) else doc
            if isinstance(doc, dict) and records is None and "signalType" in doc:
                records = [doc]
            if not isinstance(records, list):
                yield RowError(1, "StopNCII document has no 'hashRecords' list")
                return
            for number, rec in enumerate(records, start=1):
                yield _stopncii_record(number, rec)
            return
    for line, raw in _lines(text):
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield RowError(line, f"not JSON: {exc.msg}")
            continue
        except RecursionError:
            yield RowError(line, "not JSON: nested too deeply")
            continue
        yield _stopncii_record(line, rec)


def _te_type(name: str) -> str:
    return _TE_TYPES.get(name.strip().lower(), name)


def parse_threatexchange(text: str) -> Iterator[HashRow | RowError]:
    first = next(_lines(text), (0, ""))[1]
    if first.replace(" ", "").lower().startswith("collab,signal_type,signal_str"):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for rec in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in rec.values() if isinstance(v, str)):
                continue
            collab, category, tags = (rec.get(k) or "" for k in ("collab", "category", "tags"))
            label = "/".join(p for p in (collab, category) if p) + (f" [{tags}]" if tags else "")
            yield _row(line, _te_type(rec.get("signal_type") or ""), rec.get("signal_str"), label or None)
        return
    for line, raw in _lines(text):
        parts = raw.split()
        if len(parts) != 2:
            yield RowError(line, f"expected '<signal_type> <signal>', got {raw.strip()[:80]!r}")
            continue
        yield _row(line, _te_type(parts[0]), parts[1])


_PARSERS = {
    "csv": parse_csv,
    "jsonl": parse_jsonl,
    "stopncii": parse_stopncii,
    "threatexchange": parse_threatexchange,
}


def parse(text: str, fmt: str) -> Iterator[HashRow | RowError]:
    """Rows and errors of a hash-list text, in file order."""
    try:
        parser = _PARSERS[fmt]
    except KeyError:
        raise ValueError(f"unknown hash-list format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return _guarded(parser(text))


def _guarded(items: Iterator[HashRow | RowError]) -> Iterator[HashRow | RowError]:
    """A file the csv/json readers cannot go on with (a field past the size limit, nesting deep
    enough to exhaust the recursion limit) ends with one clear error; rows before it are kept."""
    last = 0
    try:
        for item in items:
            last = item.line
            yield item
    except (csv.Error, RecursionError) as exc:
        yield RowError(last + 1, f"unreadable from here on ({type(exc).__name__}: {str(exc)[:200]})")


def parse_file(path: Path, fmt: str) -> ParsedList:
    """Whole file → good rows and errors (UTF-8, BOM tolerated).

    A binary file, or text in another encoding (UTF-16 exports are common on Windows), is one
    :class:`HashListFileError` naming the problem: guessing an encoding could import wrong values.
    """
    return split(parse(decode(path.read_bytes(), str(path)), fmt))


def decode(data: bytes, name: str = "the file") -> str:
    """UTF-8 text of a hash-list file, or :class:`HashListFileError`."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise HashListFileError(f"{name} is UTF-16 text; save it as UTF-8 and import again")
    if b"\x00" in data:
        raise HashListFileError(
            f"{name} contains NUL bytes at offset {data.index(0)}: a binary file or UTF-16/32 text, not a hash list"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HashListFileError(
            f"{name} is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8 and import again"
        ) from None


def split(items: Iterable[HashRow | RowError]) -> ParsedList:
    out = ParsedList([], [])
    for item in items:
        (out.rows if isinstance(item, HashRow) else out.errors).append(item)  # type: ignore[arg-type]
    return out
