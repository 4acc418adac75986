"""Safe image decode and PDQ hashing.

A hostile file must cost us little: the byte cap is checked before anything is parsed, the
declared dimensions (header only) before any pixel is decoded, the declared frame count before
any frame of an animation is; Pillow's own ``DecompressionBombError`` is caught as a second fence.
Every Pillow failure on bad bytes (truncated, corrupt, not an image) becomes ``Undecodable``.

PDQ follows Meta's reference: EXIF orientation applied, RGB, images above 512 px on a side
downsampled first (PDQ itself works on a 64×64 luminance grid, so nothing is lost but time).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from crawler.hashing.pdqbits import bits_to_hex
from foundation.errors import Bomb, TooLarge, Undecodable

_PDQ_SIDE = 512


@dataclass(frozen=True)
class ImageLimits:
    """Caps for one image; defaults suit chat media (photos, stickers, short GIFs)."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000  # per frame, from the header, before decode
    max_frames: int = 1000  # declared frames of an animation above this → Bomb
    hash_frames: int = 8  # frames of an animation that get a PDQ hash (evenly spread)


@dataclass(frozen=True)
class PdqHash:
    hash: str  # 64 hex
    quality: int  # 0..100; below the quality floor it is kept but never matched


@dataclass(frozen=True)
class ImageHashes:
    """PDQ of an image: ``pdq`` is frame 0 (what a viewer sees first), ``frames`` all hashed frames."""

    pdq: PdqHash
    width: int
    height: int
    format: str
    n_frames: int = 1
    frames: tuple[PdqHash, ...] = ()
    dihedral: tuple[str, ...] = field(default=())  # 8 hashes of frame 0 when asked for


_DECODE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    TypeError,
    KeyError,
)


def pdq_of_array(rgb: np.ndarray) -> PdqHash:
    """PDQ of an ``(h, w, 3)`` uint8 array."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return PdqHash(bits_to_hex(bits), int(quality))


def dihedral_of_array(rgb: np.ndarray) -> tuple[str, ...]:
    """The eight dihedral PDQ hashes (rotations × mirror) of an ``(h, w, 3)`` array."""
    hashes, _quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb, dtype=np.uint8))
    return tuple(bits_to_hex(h) for h in hashes)


def _rgb_small(frame: Image.Image) -> np.ndarray:
    img = frame.convert("RGB")
    if max(img.size) > _PDQ_SIDE:
        img.thumbnail((_PDQ_SIDE, _PDQ_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _read(data: bytes | Path, limits: ImageLimits) -> bytes:
    if isinstance(data, Path):
        try:
            size = data.stat().st_size
        except OSError as exc:
            raise Undecodable(f"cannot read {data.name}: {exc.strerror}") from exc
        if size > limits.max_bytes:
            raise TooLarge(f"image is {size} bytes, cap is {limits.max_bytes}")
        return data.read_bytes()
    if len(data) > limits.max_bytes:
        raise TooLarge(f"image is {len(data)} bytes, cap is {limits.max_bytes}")
    return data


def open_checked(raw: bytes, limits: ImageLimits) -> Image.Image:
    """Open (header only) and refuse bombs before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Bomb(f"decompression bomb: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise Undecodable(f"not a decodable image: {exc}") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise Undecodable(f"image declares empty size {width}×{height}")
    if width * height > limits.max_pixels:
        raise Bomb(f"image declares {width}×{height} = {width * height} pixels, cap is {limits.max_pixels}")
    return img


def _declared_frames(img: Image.Image, limits: ImageLimits) -> int:
    if not getattr(img, "is_animated", False):
        return 1
    # GIF counts frames by walking block headers (no pixel decode); stop walking past the cap
    if img.format == "GIF":
        count = 1
        try:
            while count <= limits.max_frames:
                img.seek(count)
                count += 1
        except EOFError:
            pass
        img.seek(0)
    else:
        count = int(getattr(img, "n_frames", 1))
    if count > limits.max_frames:
        raise Bomb(f"animation has more than {limits.max_frames} frames")
    return count


def hash_image(data: bytes | Path, limits: ImageLimits | None = None, *, dihedral: bool = False) -> ImageHashes:
    """Decode safely and PDQ-hash an image (frames of an animation too).

    Raises ``TooLarge`` (bytes over cap), ``Bomb`` (declared pixels/frames over cap, Pillow's
    bomb guard) or ``Undecodable`` (truncated, corrupt, not an image).
    """
    limits = limits or ImageLimits()
    raw = _read(data, limits)
    img = open_checked(raw, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            n_frames = _declared_frames(img, limits)
            fmt = str(img.format or "")
            img.draft("RGB", (_PDQ_SIDE * 2, _PDQ_SIDE * 2))  # JPEG: decode at reduced scale
            first = ImageOps.exif_transpose(img) or img
            first_rgb = _rgb_small(first)
            frames = [pdq_of_array(first_rgb)]
            if n_frames > 1:
                picks = np.unique(np.linspace(0, n_frames - 1, min(limits.hash_frames, n_frames)).astype(int))
                for index in picks[1:]:
                    img.seek(int(index))
                    frames.append(pdq_of_array(_rgb_small(img)))
            dihedral_hashes = dihedral_of_array(first_rgb) if dihedral else ()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Bomb(f"decompression bomb: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise Undecodable(f"image could not be decoded: {exc}") from exc
    except MemoryError as exc:
        raise Bomb("image needs more memory than we allow") from exc
    return ImageHashes(
        pdq=frames[0],
        width=img.size[0],
        height=img.size[1],
        format=fmt,
        n_frames=n_frames,
        frames=tuple(frames),
        dihedral=dihedral_hashes,
    )
