"""Web archives of what the crawl fetched: WARC 1.1 records (warcio) and a WACZ package of them.

Why these records look the way they do:

- tgwatch keeps, for every page it parsed, the exact HTML it relied on (a message bubble, a channel
  header, or a whole page) with its SHA-256, its URL and its fetch time; the ledger's ``capture``
  entries hold the same digest, URL and time. Each becomes a ``request`` record (the GET that was
  sent) and a ``response`` record whose payload is exactly those stored bytes, dated with the
  fetch time, with ``WARC-Payload-Digest: sha256:<base32>`` — the ledger's digest in WARC's usual
  encoding — so a reader checks a record against the ledger with nothing but the record. The
  response's HTTP headers are written by tgwatch (``200``, ``text/html; charset=utf-8``, the
  payload's length): the original headers were not kept, and ``Tgwatch-Capture: stored-html`` says
  the payload is the HTML kept from that fetch, often one part of the page (a message bubble, the
  header). Several parts of one page share its URL and time, so a replay tool shows one of them
  for that URL; the bundle's ``captures/`` hold every one.
- Screenshots are ``resource`` records (``image/png``) for the post's widget URL, with the
  screenshot's SHA-256 as their payload digest.

WACZ: the ``wacz`` package (0.6) pulls in ``frictionless`` and its tree (dozens of packages) to
write a zip of four known files, so the layout of WACZ 1.1.1 is written here instead:
``archive/data.warc.gz`` (stored, not compressed again), ``indexes/index.cdxj`` (sorted CDXJ with
each record's offset and length, computed with warcio's ``ArchiveIterator``), ``pages/pages.jsonl``,
``datapackage.json`` (the SHA-256 and size of each file) and ``datapackage-digest.json``.
ReplayWeb.page and pywb open it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SOFTWARE = "tgwatch (warcio)"
WACZ_VERSION = "1.1.1"
WARC_NAME = "data.warc.gz"


@dataclass(frozen=True)
class WebCapture:
    """One stored fetch: what the ledger says (URL, time, digest) and the bytes it digests."""

    url: str
    fetched_at: datetime
    sha256: str
    content: bytes
    seq: int | None = None
    title: str = ""


@dataclass(frozen=True)
class Screenshot:
    url: str
    taken_at: datetime
    sha256: str
    png: bytes
    seq: int | None = None


def sha256_label(hex_digest: str) -> str:
    """``sha256:<base32>``, WARC's usual digest form, from a hex SHA-256."""
    return "sha256:" + base64.b32encode(bytes.fromhex(hex_digest)).decode("ascii")


def hex_of_label(label: str) -> str | None:
    """The hex SHA-256 inside a ``sha256:`` label (base32 or hex), or None."""
    algo, _, value = label.partition(":")
    if algo.lower() != "sha256":
        return None
    try:
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b32decode(value.upper())
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def is_web_url(url: object) -> bool:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname)


def _warc_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_warc(captures: Iterable[WebCapture], screenshots: Iterable[Screenshot] = ()) -> bytes:
    """One gzip WARC (each record its own gzip member): warcinfo, then request/response pairs."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    info = {"software": SOFTWARE, "format": "WARC File Format 1.1", "description": "tgwatch captures"}
    writer.write_record(writer.create_warcinfo_record(WARC_NAME, info))
    for cap in captures:
        date = _warc_date(cap.fetched_at)
        parts = urlsplit(cap.url)
        request_headers = StatusAndHeaders(
            f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            [("Host", parts.netloc), ("User-Agent", "tgwatch")],
            is_http_request=True,
        )
        response_headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(cap.content))),
            ("Tgwatch-Capture", "stored-html"),  # the HTML kept from this fetch (the page or a part of it)
        ]
        extra = {"WARC-Date": date, "WARC-Payload-Digest": sha256_label(cap.sha256)}
        if cap.seq is not None:
            extra["Tgwatch-Ledger-Seq"] = str(cap.seq)
        response = writer.create_warc_record(
            cap.url,
            "response",
            payload=io.BytesIO(cap.content),
            length=len(cap.content),
            http_headers=StatusAndHeaders("200 OK", response_headers, protocol="HTTP/1.1"),
            warc_headers_dict=extra,
        )
        request = writer.create_warc_record(
            cap.url, "request", payload=io.BytesIO(b""), length=0, http_headers=request_headers,
            warc_headers_dict={"WARC-Date": date},
        )  # fmt: skip
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        writer.write_record(request)
        writer.write_record(response)
    for shot in screenshots:
        extra = {"WARC-Date": _warc_date(shot.taken_at), "WARC-Payload-Digest": sha256_label(shot.sha256)}
        if shot.seq is not None:
            extra["Tgwatch-Ledger-Seq"] = str(shot.seq)
        record = writer.create_warc_record(
            shot.url, "resource", payload=io.BytesIO(shot.png), length=len(shot.png), warc_content_type="image/png",
            warc_headers_dict=extra,
        )  # fmt: skip
        writer.write_record(record)
    return out.getvalue()


def surt(url: str) -> str:
    """The SURT form CDXJ indexes sort by (``com,example)/path?query``)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if not all(label.isdigit() for label in labels) and ":" not in host:  # IP literals are not reversed
        labels.reverse()
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    query = f"?{parts.query}" if parts.query else ""
    return ",".join(labels) + port + ")" + (parts.path or "/").lower() + query.lower()


def cdxj_lines(warc: bytes, filename: str = WARC_NAME) -> list[str]:
    """A sorted CDXJ index of the response and resource records of one WARC."""
    lines = []
    it = ArchiveIterator(io.BytesIO(warc))
    for record in it:
        if record.rec_type not in ("response", "resource"):
            continue
        uri = record.rec_headers.get_header("WARC-Target-URI")
        date = record.rec_headers.get_header("WARC-Date")
        digest = record.rec_headers.get_header("WARC-Payload-Digest")
        if record.rec_type == "response" and record.http_headers is not None:
            mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0]
            status = record.http_headers.get_statuscode()
        else:
            mime, status = (record.rec_headers.get_header("Content-Type") or ""), "200"
        record.content_stream().read()  # to the record's end, so its length is known
        stamp = date.replace("-", "").replace("T", "").replace(":", "").replace("Z", "")[:14]
        where = {"length": str(it.get_record_length()), "offset": str(it.get_record_offset()), "filename": filename}
        fields = {"url": uri, "mime": mime, "status": status, "digest": digest, **where}
        lines.append(f"{surt(uri)} {stamp} {json.dumps(fields)}")
    return sorted(lines)


def write_wacz(warc: bytes, pages: Iterable[dict[str, Any]], *, title: str, created: datetime | None = None) -> bytes:
    """A WACZ 1.1.1 package around one WARC (see the module docstring for the layout)."""
    created_at = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page_lines = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"})]
    page_lines += [json.dumps(p, ensure_ascii=False) for p in pages]
    files: list[tuple[str, bytes, int]] = [
        (f"archive/{WARC_NAME}", warc, zipfile.ZIP_STORED),
        ("indexes/index.cdxj", ("\n".join(cdxj_lines(warc)) + "\n").encode(), zipfile.ZIP_DEFLATED),
        ("pages/pages.jsonl", ("\n".join(page_lines) + "\n").encode("utf-8"), zipfile.ZIP_DEFLATED),
    ]
    package = {
        "profile": "data-package",
        "title": title,
        "created": created_at,
        "software": SOFTWARE,
        "wacz_version": WACZ_VERSION,
        "resources": [
            {"name": path.rsplit("/", 1)[-1], "path": path, "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
             "bytes": len(data)}
            for path, data, _ in files
        ],
    }  # fmt: skip
    package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
    digest = {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data, method in files:
            zf.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
        zf.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("datapackage-digest.json", json.dumps(digest).encode(), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def pages_of(captures: Iterable[WebCapture], screenshots: Iterable[Screenshot] = ()) -> list[dict[str, Any]]:
    """One page entry per distinct URL (its first fetch), for ``pages/pages.jsonl``."""
    seen: dict[str, dict[str, Any]] = {}
    for url, at, title in [(c.url, c.fetched_at, c.title) for c in captures] + [
        (s.url, s.taken_at, "screenshot") for s in screenshots
    ]:
        ts = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if url not in seen or ts < seen[url]["ts"]:
            seen[url] = {
                "id": hashlib.sha256(url.encode()).hexdigest()[:32],
                "url": url,
                "ts": ts,
                "title": title or url,
            }
    return sorted(seen.values(), key=lambda p: (p["ts"], p["url"]))
