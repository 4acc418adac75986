"""What every command shares: effective settings, logging, and an opened store with its ingest."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

import config
from config import Settings
from crawler.tokens import cli_actor as cli_actor  # the one CLI actor form, for the command modules
from foundation import logs
from foundation.egress import environment_proxy_variables
from foundation.errors import TgwatchError
from storage.private import make_private_dir, secure_tree

if TYPE_CHECKING:
    from crawler.ingest import Ingest
    from crawler.media.fetchers import MediaFetcher
    from foundation.models import Source
    from storage.client import Store

T = TypeVar("T")


@dataclass
class Opened:
    store: Store
    ingest: Ingest


@dataclass
class AppContext:
    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path, **self.overrides)
            logs.configure(self._settings.log_level, self._settings.log_format)
            _make_data_dir_private(self._settings.data_dir)
            _warn_environment_proxies(self._settings)
        return self._settings

    @asynccontextmanager
    async def open(
        self, *, fetchers: dict[Source, MediaFetcher] | None = None, keep_alive: bool = False
    ) -> AsyncIterator[Opened]:
        """The store and the fully assembled ingest door (media stage and all); ``keep_alive`` for
        long-running commands restarts a dead embedded server (see ``open_store``). Imported here, not
        at the top: ``tgwatch --help`` and ``config show`` need neither (issue 17)."""
        from crawler.pipeline import open_pipeline
        from storage.client import open_store

        async with (
            open_store(self.settings, keep_alive=keep_alive) as store,
            open_pipeline(store, self.settings, fetchers=fetchers) as ingest,
        ):
            yield Opened(store=store, ingest=ingest)


def _warn_environment_proxies(settings: Settings) -> None:
    """tgwatch sends through ``http.proxy`` only; a proxy variable in the environment is ignored,
    and an operator who expected it to apply is told once (foundation/egress.py)."""
    ignored = environment_proxy_variables(os.environ)
    if ignored:
        logs.get_logger(__name__).warning(
            "environment_proxy_ignored", variables=ignored, configured_proxy=bool(settings.http.proxy),
            hint="tgwatch uses only http.proxy (TGWATCH_HTTP__PROXY); see docs/security.md, egress",
        )  # fmt: skip


def _make_data_dir_private(data_dir: Path) -> None:
    """Keys, quarantine and the embedded store's files live here: owner only (see storage/private.py).
    A data_dir not made yet is left to whoever first writes into it (under the CLI's umask)."""
    if not data_dir.exists():
        return
    try:
        make_private_dir(data_dir)
        secure_tree(data_dir)
    except OSError as exc:
        raise click.ClickException(f"data_dir {data_dir}: {exc}") from exc


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; SIGTERM cancels it like Ctrl-C so every ``finally`` runs."""

    async def runner() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(runner())
    except asyncio.CancelledError as exc:
        raise click.Abort() from exc


def async_command(func: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Turn an ``async def`` click callback into a sync one; map our errors to a clean exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return run_async(cast(Coroutine[Any, Any, T], func(*args, **kwargs)))
        except TgwatchError as exc:
            raise click.ClickException(f"{exc.kind}: {exc.message}") from exc

    return wrapper


pass_app = click.make_pass_decorator(AppContext)
