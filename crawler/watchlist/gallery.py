"""The enrolled embeddings held in memory by the detector, and the one comparison it makes.

Only enrolled persons are in a gallery; a face is compared with them and nothing else, and the
embedding of a face that matches nobody is dropped by the caller (it is never stored or sent).
Euclidean distance, as dlib's ResNet was trained for (same person below ~0.6; see
docs/watchlist.md for the threshold tgwatch uses and how it was measured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crawler.watchlist.faces import EMBEDDING_DIM


@dataclass(frozen=True)
class Hit:
    person: str
    distance: float


class Gallery:
    """Rows of embeddings, each labelled with the person reference it was enrolled under."""

    def __init__(self, entries: Iterable[tuple[str, npt.NDArray[np.float32]]] = ()) -> None:
        refs: list[str] = []
        rows: list[npt.NDArray[np.float32]] = []
        for ref, vectors in entries:
            block = np.asarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
            refs += [ref] * len(block)
            rows.append(block)
        self._refs = np.asarray(refs, dtype=object)
        self._matrix = np.vstack(rows) if rows else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        self._sq = np.einsum("ij,ij->i", self._matrix, self._matrix)

    def __len__(self) -> int:
        return len(set(self._refs.tolist()))

    @property
    def persons(self) -> list[str]:
        return sorted(set(self._refs.tolist()))

    def nearest(self, embedding: npt.NDArray[np.float32]) -> Hit | None:
        """The closest enrolled person (any distance), or None for an empty gallery."""
        if not len(self._matrix):
            return None
        q = np.asarray(embedding, dtype=np.float32).reshape(EMBEDDING_DIM)
        # |a-b|² = |a|² - 2a·b + |b|²: one matrix-vector product for the whole gallery. einsum, not
        # ``@``: a multi-threaded BLAS spins threads for a product this small (10× slower on 2 shared cores)
        d2 = self._sq - 2.0 * np.einsum("ij,j->i", self._matrix, q) + float(np.dot(q, q))
        i = int(np.argmin(d2))
        return Hit(str(self._refs[i]), float(np.sqrt(max(float(d2[i]), 0.0))))

    def match(self, embedding: npt.NDArray[np.float32], threshold: float) -> Hit | None:
        hit = self.nearest(embedding)
        return hit if hit is not None and hit.distance <= threshold else None
