"""Symmetric keys that protect data at rest: from settings when given, else a key file made once.

A key file lives under ``data_dir/keys`` with mode 0600 and is never stored in MongoDB, so a copy of
the database alone does not reveal quarantined media.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from pydantic import SecretStr

from foundation.errors import ConfigError


def decode_key(value: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise ConfigError(f"{name} is not urlsafe base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(raw)}")
    return raw


def load_or_create(configured: SecretStr | None, data_dir: Path, name: str) -> bytes:
    if configured is not None:
        return decode_key(configured.get_secret_value(), name)
    path = data_dir / "keys" / f"{name}.key"
    if not path.exists():
        _create(path)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:  # loosened by hand or a copy: only the owner may read it
        try:
            path.chmod(0o600)
        except PermissionError as exc:
            raise ConfigError(f"{path} is readable by other users and is not ours to fix: chmod 600 it") from exc
    return decode_key(path.read_text().strip(), str(path))


def _create(path: Path) -> None:
    """Write a new key file atomically: two processes starting at once end up with one key, and
    neither ever reads a half-written file (the key is written aside, then linked into place)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(key).decode())
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is the key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
