"""Image hashing: PDQ survives everyday transforms, separates unrelated pictures, and bad input is refused."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from crawler.hashing import synthetic as syn
from crawler.hashing.images import ImageLimits, hash_image
from crawler.hashing.pdqbits import hex_distance
from foundation.errors import Bomb, TooLarge, Undecodable

SEEDS = [0, 1, 2, 3]

TRANSFORMS = {
    "half-size": lambda im: syn.encode(syn.half_size(im)),
    "jpeg-q55": lambda im: syn.encode(im, "JPEG", quality=55),
    "crop-1pct": lambda im: syn.encode(syn.crop_percent(im, 1.0)),
    "brightness+20pct": lambda im: syn.encode(syn.brighter(im, 1.2)),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transformed_copies_match_within_31(seed: int, name: str) -> None:
    img = syn.scene(seed)
    original = hash_image(syn.encode(img)).pdq
    variant = hash_image(TRANSFORMS[name](img)).pdq
    assert original.quality >= 50
    assert hex_distance(original.hash, variant.hash) <= 31


def test_unrelated_images_do_not_match() -> None:
    hashes = [hash_image(syn.encode(syn.scene(seed))).pdq.hash for seed in range(10, 22)]
    for i, a in enumerate(hashes):
        for b in hashes[i + 1 :]:
            assert hex_distance(a, b) > 31


@pytest.mark.parametrize(
    "op",
    [
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.TRANSPOSE,
    ],
)
def test_rotated_and_mirrored_copies_match_only_with_dihedral(op: Image.Transpose) -> None:
    img = syn.scene(5)
    listed = hash_image(syn.encode(img)).pdq.hash
    seen = hash_image(syn.encode(img.transpose(op)), dihedral=True)
    assert hex_distance(listed, seen.pdq.hash) > 31  # plain PDQ misses it
    assert len(seen.dihedral) == 8
    assert min(hex_distance(listed, d) for d in seen.dihedral) <= 31


def test_exif_orientation_is_applied_before_hashing() -> None:
    img = syn.scene(6)
    upright = hash_image(syn.encode(img, "JPEG", quality=95)).pdq.hash
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored sideways
    stored = img.transpose(Image.Transpose.ROTATE_90)
    tagged = hash_image(syn.encode(stored, "JPEG", quality=95, exif=exif.tobytes())).pdq.hash
    assert hex_distance(upright, tagged) <= 31


def test_animated_gif_hashes_a_bounded_set_of_frames() -> None:
    frames = [syn.scene(40 + i, (160, 120)) for i in range(30)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = hash_image(buf.getvalue(), ImageLimits(hash_frames=5))
    assert result.n_frames == 30
    assert len(result.frames) == 5
    assert result.pdq == result.frames[0]
    assert len({f.hash for f in result.frames}) == 5


def test_hostile_gif_with_thousands_of_frames_is_a_bomb() -> None:
    tiny = [Image.new("L", (4, 4), (i * 37) % 256) for i in range(3000)]
    buf = io.BytesIO()
    tiny[0].save(buf, "GIF", save_all=True, append_images=tiny[1:], duration=10)
    with pytest.raises(Bomb, match="more than 1000 frames"):
        hash_image(buf.getvalue())


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def test_tiny_png_declaring_100000_squared_pixels_is_a_bomb() -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    png += _png_chunk(b"IEND", b"")
    assert len(png) < 200
    with pytest.raises(Bomb):
        hash_image(png)


def test_pixel_cap_is_configurable() -> None:
    data = syn.encode(syn.scene(7, (400, 300)))
    with pytest.raises(Bomb, match="120000 pixels"):
        hash_image(data, ImageLimits(max_pixels=100_000))


def test_oversized_file_is_too_large(tmp_path: Path) -> None:
    data = syn.encode(syn.scene(8))
    with pytest.raises(TooLarge):
        hash_image(data, ImageLimits(max_bytes=len(data) - 1))
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(TooLarge):
        hash_image(path, ImageLimits(max_bytes=1000))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_images_are_undecodable(fmt: str) -> None:
    data = syn.encode(syn.scene(9).convert("RGB"), fmt)
    with pytest.raises(Undecodable):
        hash_image(data[: len(data) // 3])


def test_corrupt_and_non_media_are_undecodable() -> None:
    data = bytearray(syn.encode(syn.scene(10)))
    data[40:400] = b"\xff" * 360  # trash the IDAT stream
    with pytest.raises(Undecodable):
        hash_image(bytes(data))
    for junk in (b"", b"hello, this is text", b"%PDF-1.7\n" + b"0" * 500, bytes(range(256)) * 10):
        with pytest.raises(Undecodable):
            hash_image(junk)
