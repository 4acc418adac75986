"""Live progress bars for long CLI work (rich), silent when stderr is not a terminal.

::

    with progress_bar("crawling", total=len(targets)) as bar:
        for t in targets:
            ...
            bar.advance(note=t)

Logs and piped output stay clean: off a TTY (cron, CI, ``| jq``) the bar does nothing at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class Bar:
    """One task of a progress display; a no-op when ``progress`` is None."""

    def __init__(self, progress: Progress | None, task_id: TaskID | None) -> None:
        self._progress = progress
        self._task_id = task_id
        self.completed = 0

    @property
    def enabled(self) -> bool:
        return self._progress is not None

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.completed += n
        if self._progress is not None and self._task_id is not None:
            if note is None:
                self._progress.update(self._task_id, advance=n)
            else:
                self._progress.update(self._task_id, advance=n, note=note)

    def note(self, text: str) -> None:
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, note=text)


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def progress_bar(
    description: str, total: int | None = None, *, stream: TextIO | None = None, enabled: bool | None = None
) -> Iterator[Bar]:
    """A live bar on ``stream`` (stderr) while the block runs; ``enabled=None`` means "if a TTY"."""
    stream = stream or sys.stderr
    if not (is_tty(stream) if enabled is None else enabled):
        yield Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(file=stream),
        transient=False,
    )
    with progress:
        task_id = progress.add_task(description, total=total, note="")
        yield Bar(progress, task_id)
