"""Streamed exports of a search: JSON Lines (one message per line) and CSV.

Rows are written as they are read, so an export of a large search holds one batch in memory. The
JSON Lines shape is the one ``tgwatch query messages --json`` prints (``crawler.cli.query``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from storage.client import Doc

FORMATS = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
CSV_COLUMNS = [
    "channel",
    "msg_id",
    "date",
    "text",
    "media_sha256",
    "views",
    "edited",
    "deleted",
    "deleted_at",
    "version",
]


def message_line(doc: Doc) -> dict[str, Any]:
    """The JSON Lines shape of one message (documented in the README): the export and ``tgwatch query``."""
    date = doc.get("date")
    deleted_at = doc.get("deleted_at")
    return {
        "channel": doc.get("channel"),
        "msg_id": doc.get("msg_id"),
        "date": date.isoformat() if date else None,
        "text": doc.get("text", ""),
        "media": [
            {k: v for k, v in m.items() if k in {"kind", "url", "sha256", "duration", "file_name", "size"} and v}
            for m in doc.get("media", [])
        ],
        "views": doc.get("views"),
        "edited": bool(doc.get("edited")),
        "deleted": deleted_at is not None,
        "deleted_at": deleted_at.isoformat() if deleted_at else None,
        "version": doc.get("version", 1),
    }


def csv_row(doc: Doc) -> list[Any]:
    line = message_line(doc)
    digests = ";".join(m["sha256"] for m in line["media"] if m.get("sha256"))
    return [
        line["channel"],
        line["msg_id"],
        line["date"] or "",
        _defuse(line["text"]),
        digests,
        "" if line["views"] is None else line["views"],
        str(line["edited"]).lower(),
        str(line["deleted"]).lower(),
        line["deleted_at"] or "",
        line["version"],
    ]


def _defuse(text: str) -> str:
    """Spreadsheets execute cells starting with = + - @; a leading quote keeps them text."""
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


async def stream_export(
    request: web.Request, docs: AsyncIterator[Doc], fmt: str, filename: str
) -> tuple[web.StreamResponse, int]:
    """Write every document to the response; returns it and how many rows were written."""
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[fmt],
            "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    count = 0
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        await response.write(("\ufeff" + buf.getvalue()).encode("utf-8"))  # BOM: spreadsheets read UTF-8
    async for doc in docs:
        if fmt == "jsonl":
            chunk = json.dumps(message_line(doc), ensure_ascii=False) + "\n"
        else:
            buf = io.StringIO()
            csv.writer(buf).writerow(csv_row(doc))
            chunk = buf.getvalue()
        await response.write(chunk.encode("utf-8"))
        count += 1
    await response.write_eof()
    return response, count
