"""Synthetic media for tests and benchmarks: shapes, gradients, noise and text drawn by code.

Nothing here resembles a person; every picture is a seeded abstract composition, so tests are
reproducible and no real media is ever needed.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A seeded abstract picture: a gradient, a dozen shapes, a line of text and a little noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, w)[None, :, None] * np.linspace(0.3, 1.0, h)[:, None, None]
    base = (a[None, None, :] * (1 - t) + b[None, None, :] * t).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=fill)
    draw.text((w // 10, h // 2), f"synthetic #{seed}", fill=(255, 255, 255))
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def half_size(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def crop_percent(img: Image.Image, percent: float = 1.0) -> Image.Image:
    dx, dy = round(img.width * percent / 100), round(img.height * percent / 100)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def brighter(img: Image.Image, factor: float = 1.2) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(factor)


def video(
    seed: int, seconds: int = 6, fps: int = 10, size: tuple[int, int] = (192, 144), codec: str = "libx264"
) -> bytes:
    """An MP4 (or WebM for VP8/VP9) of ``seconds`` still scenes, one per second."""
    fmt = "webm" if codec.startswith("libvpx") else "mp4"
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        frames = [np.asarray(scene(seed * 1000 + s, size)) for s in range(seconds)]
        for i in range(seconds * fps):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frames[i // fps], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def reencode(data: bytes, codec: str = "libvpx", size: tuple[int, int] | None = None, fps: int = 15) -> bytes:
    """Decode ``data`` and encode it again with another codec, size and frame rate."""
    fmt = "webm" if codec.startswith("libvpx") else "mp4"
    out = io.BytesIO()
    with av.open(io.BytesIO(data), "r") as src, av.open(out, "w", format=fmt) as dst:
        vin = src.streams.video[0]
        w, h = size or (vin.codec_context.width, vin.codec_context.height)
        stream = dst.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        n = 0
        for frame in src.decode(vin):
            t = float(frame.time or 0.0)
            while n / fps <= t:  # resample to the new frame rate
                img = frame.reformat(width=w, height=h, format="yuv420p")
                img.pts = n
                img.time_base = Fraction(1, fps)
                for packet in stream.encode(img):
                    dst.mux(packet)
                n += 1
        for packet in stream.encode():
            dst.mux(packet)
    return out.getvalue()
