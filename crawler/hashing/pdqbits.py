"""PDQ hash representations: 64-hex strings (what lists and records carry) and 4×uint64 words.

The hex form is Meta's: the 256 bits most-significant first, as ``pdq_hasher`` in
python-threatexchange prints them. The word form is what the index and distance code work on:
word 0 holds hex characters 0–15 (big-endian), so a Hamming distance is four popcounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

PDQ_HEX_LEN = 64
PDQ_BITS = 256

Words = npt.NDArray[np.uint64]


def bits_to_hex(bits: npt.ArrayLike) -> str:
    """256 0/1 values (pdqhash's output) → 64 lowercase hex characters."""
    arr = np.asarray(bits, dtype=np.uint8)
    if arr.shape != (PDQ_BITS,):
        raise ValueError(f"a PDQ hash has {PDQ_BITS} bits, got shape {arr.shape}")
    return np.packbits(arr).tobytes().hex()


def hex_to_words(hashes: Iterable[str] | str) -> Words:
    """One or many 64-hex PDQ strings → an ``(n, 4)`` uint64 array (big-endian words)."""
    if isinstance(hashes, str):
        hashes = [hashes]
    hashes = list(hashes)
    joined = "".join(hashes)
    if len(joined) == PDQ_HEX_LEN * len(hashes) and all(len(h) == PDQ_HEX_LEN for h in hashes):
        blob = bytes.fromhex(joined)  # one call for the whole batch (a million stored PDQs at once)
        if len(blob) != 32 * len(hashes):  # fromhex skips spaces: never let a hash shift the next
            raise ValueError("every PDQ hash must be 64 hex characters")
    else:
        blob = b"".join(bytes.fromhex(h) for h in hashes)
    if len(blob) % 32:
        raise ValueError("every PDQ hash must be 64 hex characters")
    return np.frombuffer(blob, dtype=">u8").astype(np.uint64).reshape(-1, 4)


def words_to_hex(words: Words) -> list[str]:
    """Inverse of :func:`hex_to_words`."""
    raw = np.ascontiguousarray(words, dtype=np.uint64).astype(">u8").tobytes()
    return [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]


def as_words(hashes: Sequence[str] | Words) -> Words:
    """Accept hex strings, ``(n, 4)`` uint64 words or ``(n, 32)`` uint8 bytes; return ``(n, 4)`` uint64."""
    if isinstance(hashes, np.ndarray):
        if hashes.ndim == 2 and hashes.shape[1] == 4 and hashes.dtype == np.uint64:
            return hashes
        if hashes.ndim == 2 and hashes.shape[1] == 32 and hashes.dtype == np.uint8:
            return np.ascontiguousarray(hashes).view(">u8").astype(np.uint64).reshape(-1, 4)
        raise ValueError(f"PDQ word arrays must be (n, 4) uint64 or (n, 32) uint8, got {hashes.shape} {hashes.dtype}")
    return hex_to_words(list(hashes))


def hamming(a: Words, b: Words) -> npt.NDArray[np.int64]:
    """Row-wise Hamming distance between two broadcastable ``(…, 4)`` word arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int64)


def hex_distance(a: str, b: str) -> int:
    """Hamming distance of two 64-hex PDQ strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
