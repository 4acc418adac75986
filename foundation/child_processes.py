"""Child processes that end with the process that started them, even after a ``kill -9``.

On Linux a child asks the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``), set
between fork and exec. The signal comes when the *thread* that forked dies, so spawn from the
event loop's thread (asyncio does), not from a short-lived worker thread.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking for ``sig`` when the parent dies (None off Linux: nothing to ask)."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)

    return preexec
