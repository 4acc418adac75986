"""Watchlist faces detector: images/s for detection + embedding, and match time per face.

Detection + embedding: 1280×720 JPEGs with 0, 1, 2 or 3 faces (real faces, the face_recognition
sdist's test photos fetched from the package registry, pasted at different sizes into synthetic
scenes), through ``FaceModel.faces_in`` — what the detector runs per media item — in 1 and in 2
worker processes. Goal (issue 22): ≥ 5 images/s on 2 cores.

Matching: ``Gallery.nearest`` for one face against 1,000 and 10,000 enrolled persons (random unit
embeddings; the comparison does not depend on the values). Goal: < 5 ms per face at 10,000.
Run: ``python bench/faces.py [--images 60] [--queries 2000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _table import Row, print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.watchlist.faces import FaceModel
from crawler.watchlist.gallery import Gallery

_MODEL: FaceModel | None = None


def _init() -> None:
    global _MODEL
    _MODEL = FaceModel()


def _faces(data: bytes) -> tuple[int, float]:
    """Faces found and the CPU seconds this process spent on them."""
    assert _MODEL is not None
    started = time.process_time()
    found = len(_MODEL.faces_in(data))
    return found, time.process_time() - started


def images_with_faces(n: int) -> tuple[list[bytes], list[int]]:
    import pytest

    from tests.faces_support import ENROLLED, OTHER_PERSON, SAME_PERSON, face_crop, jpeg, registry_face_photos, scene

    try:
        photos = registry_face_photos()
    except pytest.skip.Exception as exc:
        sys.exit(f"cannot run: {exc}")
    model = FaceModel()
    crops = []
    for name in (ENROLLED, *SAME_PERSON, OTHER_PERSON):
        (face,) = model.faces_in((photos / name).read_bytes())
        crops.append(face_crop(photos / name, face.box, margin=0.3))
    out, counts = [], []
    for i in range(n):
        k = i % 4
        img = scene(1000 + i)
        for j in range(k):  # one face per third of the frame, 200-330 px tall
            crop = crops[(i + j) % len(crops)]
            height = 200 + 40 * ((i + j) % 4)
            part = crop.resize((int(crop.width * height / crop.height), height))
            img.paste(part, (j * 426 + 20, 100 + 60 * (j % 2)))
        out.append(jpeg(img, 85))
        counts.append(k)
    return out, counts


def throughput(images: list[bytes], workers: int) -> tuple[float, list[int], float]:
    """Wall-clock images/s, faces found per image, and CPU seconds per image."""
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        list(pool.map(_faces, images[:workers]))  # warm: models loaded in every worker
        started = time.perf_counter()
        results = list(pool.map(_faces, images))
        wall = len(images) / (time.perf_counter() - started)
    return wall, [f for f, _ in results], sum(c for _, c in results) / len(results)


def match_ms(persons: int, queries: int) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds per face compared with ``persons`` enrolled."""
    rng = np.random.default_rng(persons)
    vectors = rng.normal(size=(persons, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gallery = Gallery((f"p{i}", vectors[i]) for i in range(persons))
    faces = rng.normal(size=(queries, 128)).astype(np.float32)
    gallery.nearest(faces[0])
    started, cpu = time.perf_counter(), time.process_time()
    for q in faces:
        gallery.nearest(q)
    return (time.perf_counter() - started) / queries * 1000, (time.process_time() - cpu) / queries * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    images, counts = images_with_faces(args.images)
    load_before = os.getloadavg()[0]
    one, _, _ = throughput(images, 1)
    two, found, cpu_per_image = throughput(images, 2)
    missed = sum(max(0, c - f) for c, f in zip(counts, found, strict=True))
    m1, m1_cpu = match_ms(1_000, args.queries)
    m10, m10_cpu = match_ms(10_000, args.queries)
    print_table(
        [
            Row("detect + embed, 1 worker (wall clock)", "images/s", one),
            Row("detect + embed, 2 workers (wall clock)", "images/s", two, one, "≥ 5"),
            Row("CPU time per image (0-3 faces)", "s", cpu_per_image),
            Row("2 cores of our own: 2 / CPU time", "images/s", 2 / cpu_per_image, None, "≥ 5"),
            Row("faces placed / found", "faces", f"{sum(counts)} / {sum(found)} (missed {missed})"),
            Row("match one face, 1,000 enrolled (wall / CPU)", "ms", f"{m1:.3f} / {m1_cpu:.3f}"),
            Row("match one face, 10,000 enrolled (wall / CPU)", "ms", f"{m10:.3f} / {m10_cpu:.3f}", None, "< 5"),
        ],
        f"watchlist faces: {args.images} JPEGs of 1280×720 with 0-3 faces (dlib HOG + ResNet; baseline: 1 worker)",
    )
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
