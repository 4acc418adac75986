"""Keep tgwatch's ``data_dir`` private to the user who runs tgwatch.

The embedded store (nx-27017) has no authentication, the SQLite files hold everything (tokens,
evidence, accounts), and the key files under ``data_dir/keys`` decrypt the quarantine. So the only
line between them and another local user is the file system: directories 0700, files 0600.

New files get those modes from ``PRIVATE_UMASK``, set at process start (the CLI, the supervisor,
the server); a ``data_dir`` made by an older version, or by hand, is tightened when it is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

from foundation.errors import StoreError

PRIVATE_UMASK = 0o077

log = structlog.get_logger(__name__)


def make_private_dir(path: Path, *, shared_parent: bool = False) -> None:
    """Create ``path`` (and parents) as 0700 directories; tighten it when it already exists.

    ``shared_parent`` is for a directory in a world-writable place (the temp dir): there it must
    be a real directory owned by us, or someone else may have planted it.
    """
    old = os.umask(PRIVATE_UMASK)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    finally:
        os.umask(old)
    st = os.lstat(path) if shared_parent else os.stat(path)
    if shared_parent and (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid()):
        raise StoreError(f"{path} is not a directory owned by uid {os.getuid()}; refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
        log.warning("directory was readable by other users; made private", path=str(path))


def secure_tree(root: Path) -> int:
    """Remove group/other permissions from everything we own under ``root`` (symlinks are not
    followed); returns how many entries were tightened, logged once."""
    uid = os.getuid()
    tightened = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            tightened += _tighten(os.path.join(dirpath, name), uid)
    tightened += _tighten(str(root), uid)
    if tightened:
        log.warning("data_dir entries were open to other users; made private", data_dir=str(root), count=tightened)
    return tightened


def _tighten(path: str, uid: int) -> int:
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not stat.S_IMODE(st.st_mode) & 0o077:
            return 0
        mode = 0o700 if stat.S_ISDIR(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o700
        os.chmod(path, mode)
    except FileNotFoundError:  # removed meanwhile (a user file, a temp file)
        return 0
    return 1
