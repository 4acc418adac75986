"""Child processes that end with the process that started them, even after a ``kill -9``.

On Linux a child asks the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``), set
between fork and exec. The signal comes when the *thread* that forked dies, so spawn from the
event loop's thread (asyncio does), not from a short-lived worker thread.

Two details make the request reliable (CI once found a detector orphaned by a killed consumer):
``prctl`` is looked up in the parent, so the forked child of a threaded process only makes one
libc call (no import, no ``dlopen`` after fork), and the child checks that its parent is still the
one that forked it — a parent killed between fork and ``prctl`` sends no signal, so the child
exits by itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking for ``sig`` when the parent dies (None off Linux: nothing to ask)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec
