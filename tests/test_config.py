"""Settings precedence: defaults < TOML file < environment < CLI flags; secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import config
from foundation.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TGWATCH_MONGODB_URI", "TGWATCH_DATA_DIR", "TGWATCH_LOG_LEVEL", "TGWATCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = config.load()
    assert s.mongodb_uri is None and s.data_dir == Path(".tgwatch") and s.telegram_web_base == "https://t.me"
    assert s.log_format == "auto" and s.limits.max_media_bytes > 0


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "custom.toml"
    toml.write_text('log_level = "DEBUG"\ndata_dir = "/from/file"\n[http]\nuser_agent = "file-ua"\n')
    s = config.load(toml)
    assert (s.log_level, str(s.data_dir), s.http.user_agent) == ("DEBUG", "/from/file", "file-ua")
    monkeypatch.setenv("TGWATCH_DATA_DIR", "/from/env")
    monkeypatch.setenv("TGWATCH_HTTP__USER_AGENT", "env-ua")
    s = config.load(toml)
    assert (s.log_level, str(s.data_dir), s.http.user_agent) == ("DEBUG", "/from/env", "env-ua")
    s = config.load(toml, data_dir=Path("/from/flag"), log_level=None)
    assert (str(s.data_dir), s.log_level) == ("/from/flag", "DEBUG")


def test_default_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "tgwatch.toml").write_text('telegram_web_base = "http://127.0.0.1:9"\n')
    assert config.load().telegram_web_base == "http://127.0.0.1:9"


def test_missing_file_and_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_setting = 1\n")
    with pytest.raises(ConfigError, match="invalid settings"):
        config.load(bad)


def test_masked_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGWATCH_MONGODB_URI", "mongodb://admin:topsecret@db1,db2/?replicaSet=rs0")
    monkeypatch.setenv("TGWATCH_TELEGRAM__API_HASH", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("TGWATCH_TELEGRAM__API_ID", "12345")
    text = json.dumps(config.load().masked())
    assert "topsecret" not in text and "0123456789abcdef" not in text
    assert "mongodb://admin:****@db1,db2/?replicaSet=rs0" in text and "12345" in text


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("mongodb://h:27017/db", "mongodb://h:27017/db"),
        ("mongodb://user@h/db", "mongodb://user@h/db"),
        ("mongodb+srv://u:p@ss@cluster.example/db", "mongodb+srv://u:****@cluster.example/db"),
    ],
)
def test_mask_uri(uri: str, masked: str) -> None:
    assert config.mask_uri(uri) == masked
