"""Synthetic media bytes for the sample site: pictures drawn with PIL, short clips written with PyAV.

Every file is a pure function of its ``content_seed`` (plus size/duration), so a re-crawl downloads
the same bytes and hashing tests get stable digests; a forwarded copy shares its source's seed and
therefore its bytes. Nothing here is a real photo: gradients, shapes, noise and a caption.
Generation is lazy and cached, because encoding video costs tens of milliseconds.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import math
import random
import zlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from spiders.sample_site.content import Media, MediaKind

#: file extension → content type, for every format the site serves
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "ogg": "audio/ogg",
    "tgs": "application/x-tgsticker",
}


def _rng(seed: str) -> random.Random:
    return random.Random(zlib.crc32(seed.encode()))


def draw_picture(seed: str, width: int, height: int, caption: str = "") -> Image.Image:
    """A gradient, a few shapes, light noise and an optional caption: distinct per seed, no real content."""
    rng = _rng(seed)
    c1 = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    c2 = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    t = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    s = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    mix = (t * 0.6 + s * 0.4) if rng.random() < 0.5 else (t * 0.3 + s * 0.7)
    pixels = c1 * (1 - mix) + c2 * mix
    noise = np.random.default_rng(rng.randint(0, 2**32 - 1)).normal(0, 6, (height, width, 1)).astype(np.float32)
    img = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    # enough edges for a PDQ quality above the matching floor (flat pictures score low and are
    # never matched), so the demo's hash-list step has something real to match
    for _ in range(rng.randint(14, 24)):
        x0, y0 = rng.randint(0, width - 1), rng.randint(0, height - 1)
        x1 = min(width, x0 + rng.randint(10, max(11, width // 2)))
        y1 = min(height, y0 + rng.randint(10, max(11, height // 2)))
        fill = tuple(rng.randint(0, 255) for _ in range(3))
        shape = rng.choice(("rect", "ellipse", "line"))
        if shape == "rect":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=rng.randint(2, 8))
    if caption:
        draw.text((8, 8), caption, fill=(255, 255, 255), font=ImageFont.load_default())
    return img


def _image_bytes(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        img.save(buf, "JPEG", quality=85)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=80)
    else:
        img.save(buf, "PNG", optimize=False)
    return buf.getvalue()


@functools.lru_cache(maxsize=512)
def picture(seed: str, width: int, height: int, fmt: str = "jpg") -> bytes:
    """Encoded picture bytes (``fmt`` is jpg, png or webp)."""
    return _image_bytes(draw_picture(seed, width, height, caption=seed[-24:]), fmt)


@functools.lru_cache(maxsize=64)
def video(seed: str, width: int, height: int, seconds: int) -> bytes:
    """An H.264 MP4 of a ball moving over a gradient, ``seconds`` long at 10 fps."""
    width, height = width - width % 2, height - height % 2
    background = np.asarray(draw_picture(seed, width, height))
    rng = _rng(seed + ":ball")
    radius = max(6, min(width, height) // 8)
    colour = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    buf = io.BytesIO()
    fps = 10
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frames = max(1, seconds * fps)
        for n in range(frames):
            cx = int(radius + (width - 2 * radius) * (0.5 + 0.5 * math.sin(2 * math.pi * n / frames)))
            cy = int(radius + (height - 2 * radius) * n / max(1, frames - 1))
            frame = background.copy()
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius * radius] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def voice(seed: str, seconds: int) -> bytes:
    """An Ogg/Opus voice note: a gliding tone with a slow tremolo, ``seconds`` long, mono 48 kHz."""
    rate = 48000
    rng = _rng(seed)
    f0, f1 = rng.uniform(180, 320), rng.uniform(320, 600)
    total = max(1, seconds) * rate
    t = np.arange(total, dtype=np.float64) / rate
    freq = f0 + (f1 - f0) * t / max(1, seconds)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    samples = (0.3 * np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        chunk = 960
        for start in range(0, total, chunk):
            block = samples[start : start + chunk]
            if len(block) < chunk:
                block = np.pad(block, (0, chunk - len(block)))
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def tgs_sticker(seed: str) -> bytes:
    """A minimal gzipped Lottie document (what ``.tgs`` animated stickers are): one pulsing circle."""
    rng = _rng(seed)
    colour = [round(rng.random(), 3) for _ in range(3)] + [1]
    doc = {
        "v": "5.5.2", "fr": 30, "ip": 0, "op": 30, "w": 512, "h": 512, "nm": seed, "ddd": 0, "tgs": 1,
        "assets": [],
        "layers": [{
            "ddd": 0, "ind": 1, "ty": 4, "nm": "dot", "sr": 1, "ip": 0, "op": 30, "st": 0, "bm": 0,
            "ks": {"o": {"a": 0, "k": 100}, "r": {"a": 0, "k": 0}, "p": {"a": 0, "k": [256, 256, 0]},
                   "a": {"a": 0, "k": [0, 0, 0]}, "s": {"a": 0, "k": [100, 100, 100]}},
            "shapes": [{"ty": "el", "p": {"a": 0, "k": [0, 0]}, "s": {"a": 0, "k": [200, 200]}},
                       {"ty": "fl", "c": {"a": 0, "k": colour}, "o": {"a": 0, "k": 100}}],
        }],
    }  # fmt: skip
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


@functools.lru_cache(maxsize=256)
def emoji_png(code: str) -> bytes:
    """A 40×40 badge standing in for t.me's emoji images (``code`` is the hex of the UTF-8 bytes)."""
    return picture("emoji:" + code, 40, 40, "png")


def media_bytes(media: Media, variant: str, ext: str) -> bytes:
    """The bytes served for one media slot.

    ``variant`` is the URL's folder: ``file`` (the media itself) or ``thumb`` (a video's poster
    picture). Raises ``KeyError`` for a combination the site never links to.
    """
    if ext not in CONTENT_TYPES:
        raise KeyError(ext)
    seed = media.content_seed
    w, h = media.width or 320, media.height or 240
    if variant == "thumb" or media.kind is MediaKind.PHOTO:
        if ext not in ("jpg", "png", "webp"):
            raise KeyError(ext)
        return picture(seed, w, h, ext)
    if variant != "file":
        raise KeyError(variant)
    if media.kind in (MediaKind.VIDEO, MediaKind.ROUND_VIDEO, MediaKind.GIF) and ext == "mp4":
        return video(seed, w, h, media.duration or 1)
    if media.kind is MediaKind.VOICE and ext == "ogg":
        return voice(seed, media.duration or 1)
    if media.kind is MediaKind.STICKER:
        if ext == "tgs":
            return tgs_sticker(seed)
        if ext == "webp":
            return picture(seed, w, h, "webp")
    raise KeyError(f"{media.kind}/{variant}.{ext}")
