"""Text in images and video keyframes, read by Tesseract through pytesseract.

Why: abusers put names, handles and contact links into pictures precisely because text search
does not see them. The text read here is stored with the media item and searched with the message.

Bounds: the same decode fences as hashing (``open_checked``: byte and pixel caps before any pixel
is decoded), images scaled so their longer side is at most ``MAX_SIDE`` px, at most
``KEYFRAMES`` keyframes of a video, and one wall-clock ``timeout`` for the whole item, enforced by
pytesseract killing the ``tesseract`` process. Tesseract is a system program (Debian's
``tesseract-ocr`` with the ``kor`` and ``eng`` data, ``scripts/install-ocr.sh``); without it every
item gets ``error.kind = "ocr_unavailable"``, recorded, never an invented empty text.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps

from crawler.hashing.images import ImageLimits, open_checked
from foundation.errors import TgwatchError

MAX_SIDE = 2000
KEYFRAMES = 3
DEFAULT_LANGUAGES = "kor+eng"


@dataclass(frozen=True)
class OcrResult:
    text: str = ""
    languages: str = DEFAULT_LANGUAGES
    frames: int = 0
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    engine: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "languages": self.languages,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "engine": self.engine,
        }


@dataclass
class _Budget:
    timeout: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.timeout - (time.monotonic() - self.started)


@functools.lru_cache(maxsize=8)
def available(languages: str = DEFAULT_LANGUAGES) -> str | None:
    """Why OCR cannot run here (None when it can): the binary or a language's data is missing."""
    if shutil.which("tesseract") is None:
        return "the tesseract program is not installed (scripts/install-ocr.sh)"
    import pytesseract

    try:
        have = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractError, OSError, RuntimeError) as exc:
        return f"tesseract does not run: {exc}"
    missing = [lang for lang in languages.split("+") if lang not in have]
    return f"tesseract has no data for {', '.join(missing)}" if missing else None


def _prepare(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img) or img
    img = img.convert("L")
    scale = MAX_SIDE / max(img.size)
    if scale < 1:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    return img


def _keyframes(data: bytes, limit: int, budget: _Budget) -> list[Image.Image]:
    from crawler.hashing.video import VideoLimits, _open

    container = _open(data, VideoLimits())
    try:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        frames: list[Image.Image] = []
        for frame in container.decode(stream):
            frames.append(frame.to_image())
            if len(frames) >= limit or budget.left() <= 0:
                break
        return frames
    finally:
        container.close()


def _images(data: bytes, kind: str, budget: _Budget) -> list[Image.Image]:
    if kind == "video":
        return _keyframes(data, KEYFRAMES, budget)
    img = open_checked(data, ImageLimits())
    img.seek(0)
    return [img.copy()]


def read_text(data: bytes, kind: str, *, languages: str = DEFAULT_LANGUAGES, timeout: float = 20.0) -> OcrResult:
    """The text Tesseract reads in an image (``kind`` "image") or in a video's first keyframes."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core per Tesseract run: the crawl shares the machine
    budget = _Budget(timeout)
    missing = available(languages)
    if missing is not None:
        return OcrResult(languages=languages, error={"kind": "ocr_unavailable", "message": missing})
    engine = f"tesseract {pytesseract.get_tesseract_version()}"
    texts: list[str] = []
    frames = 0
    try:
        for img in _images(data, kind, budget):
            left = budget.left()
            if left <= 0:
                raise TimeoutError
            # --psm 11: sparse text, which is what captions and handles on a picture are
            text = pytesseract.image_to_string(_prepare(img), lang=languages, config="--psm 11", timeout=left)
            frames += 1
            cleaned = " ".join(text.split())
            if cleaned and cleaned not in texts:
                texts.append(cleaned)
    except (TimeoutError, RuntimeError) as exc:  # pytesseract raises RuntimeError on its timeout
        if isinstance(exc, RuntimeError) and "timeout" not in str(exc).lower():
            return _failed(languages, frames, budget, "ocr_failed", str(exc), engine, texts)
        return _failed(languages, frames, budget, "ocr_timeout", f"stopped after {timeout:g} s", engine, texts)
    except TgwatchError as exc:  # undecodable, bomb, too large
        return _failed(languages, frames, budget, exc.kind, exc.message, engine, texts)
    except (pytesseract.TesseractError, OSError, ValueError) as exc:
        return _failed(languages, frames, budget, "ocr_failed", str(exc)[:300], engine, texts)
    return OcrResult("\n".join(texts), languages, frames, time.monotonic() - budget.started, None, engine)


def _failed(
    languages: str, frames: int, budget: _Budget, kind: str, message: str, engine: str, texts: list[str]
) -> OcrResult:
    return OcrResult(
        "\n".join(texts), languages, frames, time.monotonic() - budget.started, {"kind": kind, "message": message},
        engine,
    )  # fmt: skip


def ocr_bytes_kind(kind: str) -> str | None:
    """Which reader a hashed media kind gets: "image", "video", or None (no OCR)."""
    return kind if kind in ("image", "video") else None


async def read_text_in_child(
    data: bytes, kind: str, *, languages: str = DEFAULT_LANGUAGES, seconds: float = 20.0
) -> OcrResult:
    """``read_text`` in a child process (``python -m crawler.hashing.ocr``): a video's keyframes
    need PyAV, which a crawling process never imports (issue 17: hashing decodes in its pool)."""
    import asyncio
    import json
    import sys

    from foundation.child_processes import die_with_parent

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler.hashing.ocr", kind, languages, str(seconds),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), seconds + 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return OcrResult(languages=languages, error={"kind": "ocr_timeout", "message": f"stopped after {seconds:g} s"})
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    try:
        doc = json.loads(out)
        return OcrResult(
            str(doc["text"]), str(doc["languages"]), int(doc["frames"]), float(doc["seconds"]), doc["error"],
            str(doc["engine"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return OcrResult(
            languages=languages, error={"kind": "ocr_failed", "message": f"OCR child exited {proc.returncode}"}
        )


def main() -> None:
    """``python -m crawler.hashing.ocr KIND LANGUAGES SECONDS`` < bytes > the result as JSON."""
    import json
    import sys

    kind, languages, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    result = read_text(sys.stdin.buffer.read(), kind, languages=languages, timeout=seconds)
    sys.stdout.write(json.dumps(result.to_doc(), ensure_ascii=False))


if __name__ == "__main__":
    main()
