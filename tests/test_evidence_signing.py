"""Ed25519 keys, signed tree heads, and the bundle verifier's pure-Python Ed25519 against `cryptography`."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.evidence.signing import (
    TreeHead,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_pem,
    public_key_raw,
    sign_tree_head,
    tree_head_message,
    verify_tree_head,
)
from crawler.evidence.verify_bundle import ed25519_verify, ed25519_verify_pure
from foundation.errors import ConfigError

T = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
ROOT = hashlib.sha256(b"root").digest()

# RFC 8032 §7.1, TEST 1 (empty message)
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_keygen_writes_a_0600_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        files = generate_key(tmp_path / "keys")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(files.private_path.stat().st_mode) == 0o600
    key = load_private_key(files.private_path)
    assert files.key_id == key_id(key.public_key())
    assert load_public_key(files.public_path.read_bytes()).public_bytes_raw() == public_key_raw(key.public_key())
    before = files.private_path.read_bytes()
    with pytest.raises(ConfigError, match="not overwriting"):
        generate_key(tmp_path / "keys")
    assert files.private_path.read_bytes() == before


def test_loading_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    files = generate_key(tmp_path)
    files.private_path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(files.private_path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_private_key(tmp_path / "absent.pem")
    bogus = tmp_path / "bogus.pem"
    bogus.write_bytes(b"not a key")
    bogus.chmod(0o600)
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_private_key(bogus)


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    assert key_id(key.public_key()) == hashlib.sha256(RFC8032_PUBLIC).hexdigest()


def test_public_keys_load_from_pem_hex_and_raw() -> None:
    pub = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET).public_key()
    for form in (public_key_pem(pub), RFC8032_PUBLIC.hex().encode(), RFC8032_PUBLIC):
        assert public_key_raw(load_public_key(form)) == RFC8032_PUBLIC
    with pytest.raises(ValueError, match="not an Ed25519"):
        load_public_key(b"zz" * 32)


def test_the_signed_message_is_the_canonical_json_of_size_root_and_timestamp() -> None:
    assert tree_head_message(7, "ab" * 32, "2026-05-04T03:02:01.123456Z") == (
        b'{"root_hash":"' + b"ab" * 32 + b'","size":7,"timestamp":"2026-05-04T03:02:01.123456Z"}'
    )


def test_sign_and_verify_a_tree_head() -> None:
    key = Ed25519PrivateKey.generate()
    head = sign_tree_head(key, 42, ROOT, T)
    assert head.to_dict() == {
        "size": 42,
        "root_hash": ROOT.hex(),
        "timestamp": "2026-05-04T03:02:01.123456Z",
        "signature": head.signature,
        "key_id": key_id(key.public_key()),
    }
    assert TreeHead.from_dict(head.to_dict()) == head
    assert verify_tree_head(head, key.public_key())
    # the bundle verifier's signature check accepts it too (it rebuilds the message itself)
    assert ed25519_verify_pure(
        public_key_raw(key.public_key()), head.signed_message(), base64.b64decode(head.signature)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"size": 43},
        {"root_hash": hashlib.sha256(b"other").hexdigest()},
        {"timestamp": "2026-05-04T03:02:01.123457Z"},
        {"signature": base64.b64encode(b"\x00" * 64).decode()},
        {"signature": "not base64!"},
        {"key_id": "00" * 32},
    ],
    ids=["size", "root", "timestamp", "signature", "garbage-signature", "key-id"],
)
def test_any_change_to_a_tree_head_fails_verification(change: dict[str, object]) -> None:
    key = Ed25519PrivateKey.generate()
    head = dataclasses.replace(sign_tree_head(key, 42, ROOT, T), **change)  # type: ignore[arg-type]
    assert not verify_tree_head(head, key.public_key())


def test_a_head_fails_under_another_key() -> None:
    head = sign_tree_head(Ed25519PrivateKey.generate(), 1, ROOT, T)
    assert not verify_tree_head(head, Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    "doc",
    [
        {"size": -1},
        {"size": True},
        {"root_hash": "AB" * 32},
        {"timestamp": "2026-05-04 03:02:01"},
        {"timestamp": "2026-05-04T03:02:01+00:00"},
        {"signature": 7},
        {"key_id": "short"},
    ],
)
def test_tree_head_shape_is_validated(doc: dict[str, object]) -> None:
    good = sign_tree_head(Ed25519PrivateKey.generate(), 3, ROOT, T).to_dict()
    with pytest.raises(ValueError, match="tree head"):
        TreeHead.from_dict({**good, **doc})


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        sign_tree_head(Ed25519PrivateKey.generate(), 3, ROOT, datetime(2026, 1, 1))


# --- the pure-Python Ed25519 inside the standalone verifier --------------------------------------


def test_rfc8032_test_vector_1() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    assert key.public_key().public_bytes_raw() == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE
    assert ed25519_verify_pure(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)
    assert ed25519_verify(RFC8032_PUBLIC, b"", RFC8032_SIGNATURE)
    assert not ed25519_verify_pure(RFC8032_PUBLIC, b"\x00", RFC8032_SIGNATURE)


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300), seed=st.binary(min_size=32, max_size=32), bit=st.integers(0, 511))
def test_pure_verify_agrees_with_cryptography(message: bytes, seed: bytes, bit: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    signature = key.sign(message)
    assert ed25519_verify_pure(public, message, signature)
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert ed25519_verify_pure(public, message, bytes(flipped)) == ed25519_verify(public, message, bytes(flipped))
    assert not ed25519_verify_pure(public, message, bytes(flipped))
    assert not ed25519_verify_pure(public, message + b"!", signature)


def test_pure_verify_rejects_malformed_inputs() -> None:
    sig = RFC8032_SIGNATURE
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + order).to_bytes(32, "little")  # same point equation, non-canonical S
    assert not ed25519_verify_pure(RFC8032_PUBLIC, b"", malleated)
    assert not ed25519_verify(RFC8032_PUBLIC, b"", malleated)
    assert not ed25519_verify_pure(RFC8032_PUBLIC[:31], b"", sig)
    assert not ed25519_verify_pure(RFC8032_PUBLIC, b"", sig[:63])
    not_a_point = (2**255 - 1).to_bytes(32, "little")  # y >= p
    assert not ed25519_verify_pure(not_a_point, b"", sig)
    assert not ed25519_verify_pure(RFC8032_PUBLIC, b"", not_a_point + sig[32:])


def test_private_key_pem_is_pkcs8_unencrypted(tmp_path: Path) -> None:
    files = generate_key(tmp_path)
    text = files.private_path.read_bytes()
    assert text.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert isinstance(serialization.load_pem_private_key(text, password=None), Ed25519PrivateKey)
