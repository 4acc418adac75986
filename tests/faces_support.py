"""Real face photos for the watchlist tests, fetched at test time from the package registry, and
synthetic scenes to paste a face into.

The only real faces the tests use are the test photos the ``face_recognition`` sdist ships under
``tests/test_images/`` (several photos of one person, one of another). They are downloaded with
pip from the registry into a temporary cache (never into the repository) and the tests skip, with
the reason, when the registry cannot be reached. Scenes are drawn by code: gradients and shapes.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps

SDIST = "face_recognition==1.3.0"
CACHE = Path(tempfile.gettempdir()) / "tgwatch-test-faces-1.3.0"
#: the person enrolled (from one photo) and the other person
ENROLLED = "obama.jpg"
SAME_PERSON = ("obama2.jpg", "obama3.jpg", "obama_partial_face.jpg")
OTHER_PERSON = "biden.jpg"


def registry_face_photos() -> Path:
    """The directory of the sdist's test photos (downloaded once per machine), or skip."""
    wanted = [ENROLLED, *SAME_PERSON, OTHER_PERSON]
    if all((CACHE / name).is_file() for name in wanted):
        return CACHE
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    work = Path(tempfile.mkdtemp(prefix="tgwatch-faces-dl-"))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(work),
             "--disable-pip-version-check", "--quiet"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        archives = list(work.glob("face_recognition-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            pytest.skip(f"the package registry could not be reached for {SDIST}: {proc.stderr.strip()[-300:]}")
        staged = work / "images"
        staged.mkdir()
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if "/tests/test_images/" in member.name and name in wanted and member.isfile():
                    src = tar.extractfile(member)
                    assert src is not None
                    (staged / name).write_bytes(src.read())
        if not all((staged / name).is_file() for name in wanted):
            pytest.skip(f"{SDIST} no longer ships the expected tests/test_images/")
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another worker put it there first
            os.rename(staged, CACHE)  # atomic: a parallel worker either sees all or none
        return CACHE
    except subprocess.TimeoutExpired:
        pytest.skip(f"the package registry did not answer in time for {SDIST}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def face_crop(path: Path, box: tuple[int, int, int, int], margin: float = 0.6) -> Image.Image:
    """The face ``box`` of a photo with a margin around it (what gets pasted into a scene)."""
    img = Image.open(path).convert("RGB")
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    return img.crop(
        (max(0, int(left - margin * w)), max(0, int(top - margin * h)),
         min(img.width, int(right + margin * w)), min(img.height, int(bottom + margin * h)))
    )  # fmt: skip


def scene(seed: int, size: tuple[int, int] = (1280, 720)) -> Image.Image:
    """A synthetic scene with no face: a gradient and random shapes."""
    rng = random.Random(seed)
    w, h = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    img = ImageOps.colorize(
        img.convert("L"), (rng.randrange(256), rng.randrange(256), 60), (200, rng.randrange(256), 255)
    )
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y = rng.randrange(w), rng.randrange(h)
        box = (x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 200))
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=color)
    return img


def paste(face: Image.Image, seed: int, *, scale: float = 1.0, mirror: bool = False,
          at: tuple[int, int] | None = None, size: tuple[int, int] = (1280, 720)) -> Image.Image:  # fmt: skip
    img = scene(seed, size)
    part = face.resize((max(1, int(face.width * scale)), max(1, int(face.height * scale))))
    if mirror:
        part = ImageOps.mirror(part)
    rng = random.Random(seed + 1)
    if at is None:
        at = (rng.randrange(0, max(1, img.width - part.width)), rng.randrange(0, max(1, img.height - part.height)))
    img.paste(part, at)
    return img


def jpeg(img: Image.Image, quality: int = 50) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
