"""Schedules: configuration layering, deterministic due times, jitter offsets (no store, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.targets import TargetsConfig, load_targets, parse_duration
from crawler.scheduling.plan import ANCHOR, build_schedules, select
from foundation.errors import ConfigError

CONFIG = """
log_level = "INFO"

[groups.news]
every = "30m"
jitter = "5m"
priority = 5

[groups.nightly]
cron = "0 3 * * *"
method = "mtproto"

[[targets]]
name = "daily_brief"
group = "news"

[[targets]]
name = "https://t.me/korea_now"
group = "news"
every = "2h"

[[targets]]
name = "@media_lab"
group = "nightly"

[[targets]]
name = "big_feed"
"""


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration(12) == 12
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_config_file_layers(tmp_path: Path) -> None:
    path = tmp_path / "tgwatch.toml"
    path.write_text(CONFIG)
    cfg = load_targets(path)
    by_key = {s.target: s for s in build_schedules(cfg, [])}
    brief = by_key["https://t.me/daily_brief"]
    assert (brief.every, brief.jitter, brief.priority, brief.method) == (1800, 300, 5, "web")
    korea = by_key["https://t.me/korea_now"]
    assert korea.every == 7200 and korea.priority == 5  # own every, group's priority
    lab = by_key["https://t.me/media_lab"]
    assert lab.cron == "0 3 * * *" and lab.every is None and lab.method == "mtproto"
    feed = by_key["https://t.me/big_feed"]
    assert (feed.every, feed.jitter, feed.method) == (6 * 3600, 600, "web")  # built-in defaults
    assert [s.target for s in select(by_key.values(), "news")] == ["https://t.me/daily_brief", "https://t.me/korea_now"]
    assert [s.target for s in select(by_key.values(), "t.me/s/big_feed")] == ["https://t.me/big_feed"]


def test_bad_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[targets]]\nname = "x_channel"\nevery = "1h"\ncron = "* * * * *"\n')
    with pytest.raises(ConfigError, match="either 'every' or 'cron'"):
        load_targets(path)
    path.write_text('[[targets]]\nname = "x_channel"\ngroup = "nope"\n')
    with pytest.raises(ConfigError, match="not in \\[groups\\]"):
        load_targets(path)


def test_database_overrides_configuration() -> None:
    cfg = TargetsConfig.model_validate({"targets": [{"name": "daily_brief", "every": "1h"}]})
    db = [
        {"_id": "https://t.me/daily_brief", "paused": True, "source": "override"},
        {"_id": "https://t.me/found_one", "kind": "username", "method": "web", "source": "discovery", "paused": False},
    ]
    by_key = {s.target: s for s in build_schedules(cfg, db)}
    assert by_key["https://t.me/daily_brief"].paused and by_key["https://t.me/daily_brief"].every == 3600
    assert by_key["https://t.me/daily_brief"].source == "config"
    found = by_key["https://t.me/found_one"]  # an approved candidate without schedule fields
    assert found.source == "discovery" and found.every == 6 * 3600


def test_due_times_agree_whenever_the_scheduler_started() -> None:
    """Two schedulers computing at different moments within one period get the same due time."""
    (s,) = build_schedules(TargetsConfig.model_validate({"targets": [{"name": "a_chan", "every": "10m"}]}), [])
    t1 = datetime(2026, 5, 1, 12, 3, 7, tzinfo=UTC)
    t2 = datetime(2026, 5, 1, 12, 9, 59, tzinfo=UTC)
    assert s.due_at_or_before(t1) == s.due_at_or_before(t2) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert s.next_due(t1) == datetime(2026, 5, 1, 12, 10, tzinfo=UTC)
    assert s.due_at_or_before(ANCHOR - timedelta(seconds=1)) is None
    fire = s.trigger().get_next_fire_time(None, t1)
    assert fire == s.next_due(t1)  # the APScheduler trigger fires exactly on the due grid


def test_cron_due_times() -> None:
    cfg = TargetsConfig.model_validate({"targets": [{"name": "a_chan", "cron": "*/15 * * * *"},
                                                    {"name": "b_chan", "cron": "0 3 * * 1"}]})  # fmt: skip
    a, b = build_schedules(cfg, [])
    now = datetime(2026, 5, 6, 12, 44, 59, tzinfo=UTC)  # a Wednesday
    assert a.due_at_or_before(now) == datetime(2026, 5, 6, 12, 30, tzinfo=UTC)
    assert a.next_due(now) == datetime(2026, 5, 6, 12, 45, tzinfo=UTC)
    assert b.due_at_or_before(now) == datetime(2026, 5, 4, 3, 0, tzinfo=UTC)  # Monday 03:00


def test_jitter_is_a_fixed_per_target_offset_inside_the_window() -> None:
    names = [f"chan_{i:03d}" for i in range(50)]
    cfg = TargetsConfig.model_validate({"targets": [{"name": n, "every": "1h", "jitter": "10m"} for n in names]})
    offsets = [s.offset() for s in build_schedules(cfg, [])]
    assert all(0 <= o < 600 for o in offsets)
    assert len(set(offsets)) > 40  # spread, not bunched
    assert offsets == [s.offset() for s in build_schedules(cfg, [])]  # stable across schedulers


def test_jitter_never_exceeds_half_the_interval() -> None:
    from crawler.scheduling.plan import Schedule

    fast = Schedule(target="https://t.me/a", name="a", method="web", every=20.0, cron=None, jitter=600.0,
                    priority=0, group=None, source="db", paused=False)  # fmt: skip
    assert fast.spread == 10.0 and 0 <= fast.offset() < 10.0
    hourly = fast.__class__(**{**fast.__dict__, "every": 3600.0})
    assert hourly.spread == 600.0
