"""Web archives of what the crawl fetched: WARC 1.1 records (warcio) and a WACZ package of them.

Why these records look the way they do:

- tgwatch keeps, for every page it parsed, the exact HTML it relied on (a message bubble, a channel
  header, or a whole page) with its SHA-256, its URL and its fetch time; the ledger's ``capture``
  entries hold the same digest, URL and time. Each fetch becomes one ``request`` record (the GET
  that was sent, for the page URL). The stored bytes become a record whose payload is exactly them,
  dated with the fetch time, ``WARC-Concurrent-To`` that request, with
  ``WARC-Payload-Digest: sha256:<base32>`` — the ledger's digest in WARC's usual encoding — so a
  reader checks a record against the ledger with nothing but the record.
- A message bubble (the capture names the post's permalink) is a ``resource`` record for
  ``urn:tgwatch:post:<permalink>`` (``Tgwatch-Source-URL`` gives the page it was cut from): one
  distinct URI per post that replay tools resolve (pywb: ``/COLL/<timestamp>id_/urn:tgwatch:post:…``),
  without pretending Telegram served those bytes at the permalink (it serves another page there).
  A fragment (``page#msg-ID``) would be as truthful, but replay tools drop fragments when they look
  a URL up, so every bubble of a page would again share one key. Same convention as the
  ``urn:text:``/``urn:view:`` records of Browsertrix.
- The whole page (kept since pages are stored: a ledger ``capture`` entry ``item: page`` with the
  request, the status line and headers as sent, and the body's digest ``page_sha256``; the body in
  ``web_pages``) becomes a real ``request`` record (method, target, the request headers sent, plus
  ``Host``) and a ``response`` record for the page URL with the server's status line and headers and
  the whole body as payload (``WARC-Payload-Digest`` = the ledger's ``page_sha256``). Two header
  changes make the record replayable and are said in the record: the body is stored decoded, so
  ``Content-Length`` is the body's length and ``Transfer-Encoding`` is dropped, the server's values
  kept as ``Tgwatch-Orig-Content-Length``/``Tgwatch-Orig-Transfer-Encoding`` (see
  ``archived_headers``). Headers carrying secrets (cookies, credentials) were never kept.
  Anything else kept from that fetch (the channel header) is then a ``resource`` record for
  ``urn:tgwatch:part:<page URL>``, so it does not hide the page.
- For a fetch whose page was not kept (captures made before pages were stored), anything else (a
  channel header, a whole page) is a ``response`` record for the page URL, as before. Its HTTP
  headers are written by tgwatch (``200``, ``text/html; charset=utf-8``, the payload's length), and
  ``Tgwatch-Capture: stored-html`` says the payload is the HTML kept from that fetch, often one part
  of the page (the header); its ``request`` record says it is reconstructed.
- Screenshots are ``resource`` records (``image/png``) for the post's widget URL, with the
  screenshot's SHA-256 as their payload digest.

WACZ: the ``wacz`` package (0.6) pulls in ``frictionless`` and its tree (dozens of packages) to
write a zip of four known files, so the layout of WACZ 1.1.1 is written here instead:
``archive/data.warc.gz`` (stored, not compressed again), ``indexes/index.cdx`` (sorted CDXJ lines
with each record's offset and length, computed with warcio's ``ArchiveIterator``; named ``.cdx`` as
py-wacz names it, because pywb's ``wb-manager add --unpack-wacz`` takes only ``*.cdx``),
``pages/pages.jsonl``, ``datapackage.json`` (the SHA-256 and size of each file) and
``datapackage-digest.json``. pywb opens it and replays every record byte for byte
(``tests/test_captures_replay.py``); ReplayWeb.page reads the same layout but is not run here.
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
POST_URN = "urn:tgwatch:post:"
PART_URN = "urn:tgwatch:part:"
RECONSTRUCTED = "reconstructed-request; the GET tgwatch sends, not kept from the fetch"
#: headers describing a transfer the stored (decoded) body no longer has: replaced in the archive
#: (the verifier, ``verify_bundle.archived_headers``, applies the same rule)
TRANSFER_HEADERS = ("content-length", "transfer-encoding")
INDEX_NAME = "indexes/index.cdx"


@dataclass(frozen=True)
class WebCapture:
    """One stored fetch: what the ledger says (URL, time, digest) and the bytes it digests."""

    url: str
    fetched_at: datetime
    sha256: str
    content: bytes
    seq: int | None = None
    title: str = ""
    #: the post's permalink when the bytes are one message's bubble cut from the page at ``url``
    post: str | None = None

    @property
    def record_url(self) -> str:
        """Where the record is replayed: the page URL, or ``urn:tgwatch:post:<permalink>`` for a bubble."""
        return f"{POST_URN}{self.post}" if self.post else self.url


@dataclass(frozen=True)
class HttpPage:
    """One whole fetched page: the ledger's ``item: page`` entry and the body it digests."""

    url: str
    fetched_at: datetime
    sha256: str
    body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]
    reason: str = ""
    protocol: str = "HTTP/1.1"
    method: str = "GET"
    request_headers: tuple[tuple[str, str], ...] = ()
    seq: int | None = None
    title: str = ""

    @classmethod
    def from_entry(cls, payload: dict[str, Any], body: bytes, seq: int | None = None) -> HttpPage | None:
        """From a ledger ``item: page`` payload; None when it lacks what a record needs."""
        request, response = payload.get("request"), payload.get("response")
        url, sha, at = payload.get("source_url"), payload.get("page_sha256"), payload.get("captured_at")
        if not (isinstance(request, dict) and isinstance(response, dict) and is_web_url(url)):
            return None
        if not isinstance(sha, str) or not isinstance(at, str) or not isinstance(response.get("status"), int):
            return None
        try:
            fetched = datetime.fromisoformat(at)
        except ValueError:
            return None
        return cls(
            url=str(url), fetched_at=fetched, sha256=sha, body=body, status=int(response["status"]),
            headers=_pairs(response.get("headers")), reason=str(response.get("reason") or ""),
            protocol=str(response.get("protocol") or "HTTP/1.1"), method=str(request.get("method") or "GET"),
            request_headers=_pairs(request.get("headers")), seq=seq, title=str(payload.get("channel") or ""),
        )  # fmt: skip


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        return ()
    return tuple((str(p[0]), str(p[1])) for p in value if isinstance(p, list | tuple) and len(p) == 2)


def archived_headers(headers: Iterable[tuple[str, str]], body_length: int) -> list[tuple[str, str]]:
    """The response headers as the archive writes them for a decoded body: the server's
    ``Content-Length``/``Transfer-Encoding`` renamed ``Tgwatch-Orig-…``, the body's length added."""
    out = [(k, v) for k, v in headers if k.lower() not in TRANSFER_HEADERS]
    out += [(f"Tgwatch-Orig-{k}", v) for k, v in headers if k.lower() in TRANSFER_HEADERS]
    out.append(("Content-Length", str(body_length)))
    return out


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


def post_of(payload: dict[str, Any]) -> str | None:
    """The permalink of the post a message ``capture`` entry's HTML is the bubble of, else None."""
    link = payload.get("permalink")
    return str(link) if payload.get("item") == "message" and is_web_url(link) else None


def _warc_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_warc(
    captures: Iterable[WebCapture], screenshots: Iterable[Screenshot] = (), pages: Iterable[HttpPage] = ()
) -> bytes:
    """One gzip WARC (each record its own gzip member): warcinfo, then per fetch its request, its
    whole page's response when kept, and the parts kept from it; then screenshots."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    info = {"software": SOFTWARE, "format": "WARC File Format 1.1", "description": "tgwatch captures"}
    writer.write_record(writer.create_warcinfo_record(WARC_NAME, info))
    kept = {(p.url, p.fetched_at): p for p in pages}
    fetches: dict[tuple[str, datetime], str] = {}  # fetch (URL, time) → the record the parts refer to
    for cap in captures:
        date = _warc_date(cap.fetched_at)
        fetch = (cap.url, cap.fetched_at)
        if fetch not in fetches:
            page = kept.get(fetch)
            fetches[fetch] = _write_page(writer, page) if page else _write_request(writer, cap.url, date)
        extra = {
            "WARC-Date": date,
            "WARC-Payload-Digest": sha256_label(cap.sha256),
            "WARC-Concurrent-To": fetches[fetch],
        }
        if cap.seq is not None:
            extra["Tgwatch-Ledger-Seq"] = str(cap.seq)
        if not cap.post and fetch in kept:  # the page itself is there: the part gets its own URI
            extra["Tgwatch-Source-URL"] = cap.url
            extra["Tgwatch-Capture"] = "stored-html; the part kept from the page at Tgwatch-Source-URL"
            record = writer.create_warc_record(
                f"{PART_URN}{cap.url}", "resource", payload=io.BytesIO(cap.content), length=len(cap.content),
                warc_content_type="text/html; charset=utf-8", warc_headers_dict=extra,
            )  # fmt: skip
        elif cap.post:
            extra["Tgwatch-Source-URL"] = cap.url
            extra["Tgwatch-Capture"] = "stored-html; one message cut from the page at Tgwatch-Source-URL"
            record = writer.create_warc_record(
                cap.record_url, "resource", payload=io.BytesIO(cap.content), length=len(cap.content),
                warc_content_type="text/html; charset=utf-8", warc_headers_dict=extra,
            )  # fmt: skip
        else:
            response_headers = [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(cap.content))),
                ("Tgwatch-Capture", "stored-html"),  # the HTML kept from this fetch (the page or a part of it)
            ]
            record = writer.create_warc_record(
                cap.url, "response", payload=io.BytesIO(cap.content), length=len(cap.content),
                http_headers=StatusAndHeaders("200 OK", response_headers, protocol="HTTP/1.1"),
                warc_headers_dict=extra,
            )  # fmt: skip
        writer.write_record(record)
    for fetch, page in kept.items():
        if fetch not in fetches:  # a page none of whose parts is exported
            fetches[fetch] = _write_page(writer, page)
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


def request_target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


def _write_request(writer: WARCWriter, url: str, date: str) -> str:
    """The GET tgwatch sends for ``url``, for a fetch whose request was not kept; returns its record id."""
    request_headers = StatusAndHeaders(
        f"GET {request_target(url)} HTTP/1.1", [("Host", urlsplit(url).netloc), ("User-Agent", "tgwatch")],
        is_http_request=True,
    )  # fmt: skip
    request = writer.create_warc_record(
        url, "request", payload=io.BytesIO(b""), length=0, http_headers=request_headers,
        warc_headers_dict={"WARC-Date": date, "Tgwatch-Capture": RECONSTRUCTED},
    )  # fmt: skip
    writer.write_record(request)
    return str(request.rec_headers.get_header("WARC-Record-ID"))


def _write_page(writer: WARCWriter, page: HttpPage) -> str:
    """The kept request and the whole response of one fetch; returns the response's record id."""
    date = _warc_date(page.fetched_at)
    seq = {"Tgwatch-Ledger-Seq": str(page.seq)} if page.seq is not None else {}
    sent = list(page.request_headers)
    if not any(k.lower() == "host" for k, _ in sent):  # the HTTP client adds it itself
        sent.insert(0, ("Host", urlsplit(page.url).netloc))
    request = writer.create_warc_record(
        page.url, "request", payload=io.BytesIO(b""), length=0,
        http_headers=StatusAndHeaders(f"{page.method} {request_target(page.url)} HTTP/1.1", sent, is_http_request=True),
        warc_headers_dict={"WARC-Date": date, **seq},
    )  # fmt: skip
    writer.write_record(request)
    request_id = str(request.rec_headers.get_header("WARC-Record-ID"))
    status = f"{page.status} {page.reason}".strip()
    protocol = page.protocol if page.protocol.startswith("HTTP/") else "HTTP/1.1"
    response = writer.create_warc_record(
        page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
        http_headers=StatusAndHeaders(status, archived_headers(page.headers, len(page.body)), protocol=protocol),
        warc_headers_dict={"WARC-Date": date, "WARC-Payload-Digest": sha256_label(page.sha256),
                           "WARC-Concurrent-To": request_id, **seq},
    )  # fmt: skip
    writer.write_record(response)
    return str(response.rec_headers.get_header("WARC-Record-ID"))


def surt(url: str) -> str:
    """The SURT form CDXJ indexes sort by (``com,example)/path?query``); a ``urn:`` as it is, lower case
    (what pywb's index keys hold)."""
    if url.startswith("urn:"):
        return url.lower()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if ":" not in host:  # an IPv4 literal is reversed too, as pywb (surt) and ReplayWeb.page key it
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
        (INDEX_NAME, ("\n".join(cdxj_lines(warc)) + "\n").encode(), zipfile.ZIP_DEFLATED),
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


def pages_of(
    captures: Iterable[WebCapture], screenshots: Iterable[Screenshot] = (), pages: Iterable[HttpPage] = ()
) -> list[dict[str, Any]]:
    """One page entry per distinct URL (its first fetch), for ``pages/pages.jsonl``: the web URLs
    that replay (whole pages, page and header captures, screenshots); posts' ``urn:`` records are
    left out, a page list is for web pages."""
    seen: dict[str, dict[str, Any]] = {}
    listed = [(c.url, c.fetched_at, c.title) for c in captures if not c.post]
    listed += [(p.url, p.fetched_at, p.title) for p in pages] + [(s.url, s.taken_at, "screenshot") for s in screenshots]
    for url, at, title in listed:
        ts = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if url not in seen or ts < seen[url]["ts"]:
            seen[url] = {
                "id": hashlib.sha256(url.encode()).hexdigest()[:32],
                "url": url,
                "ts": ts,
                "title": title or url,
            }
    return sorted(seen.values(), key=lambda p: (p["ts"], p["url"]))
