"""Media type from magic bytes: a server's Content-Type (or a file's name) is never trusted.

Returns a MIME type or ``None``. Only the first few dozen bytes are needed.
"""

from __future__ import annotations

IMAGE_MIMES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"})
VIDEO_MIMES = frozenset({"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/ogg"})

_ISO_BMFF_BRANDS_QT = (b"qt  ",)


def sniff(head: bytes) -> str | None:
    """MIME type of a payload judged by its leading bytes (``None`` when unrecognised)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        return "video/quicktime" if brand in _ISO_BMFF_BRANDS_QT else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "video/ogg" if b"theora" in head[:96].lower() else "audio/ogg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"ID3",)) or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return None


def media_kind(mime: str | None) -> str:
    """``image``, ``video`` or ``other`` — which hasher applies."""
    if mime in IMAGE_MIMES:
        return "image"
    if mime in VIDEO_MIMES:
        return "video"
    return "other"
