"""``config show`` masks every secret, found by walking the settings model: URL passwords in any
URL-valued setting, and any field whose name says key/secret/token/password/hash, including
settings added later. Nothing else changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import config

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "TGWATCH_HTTP__PROXY": "http://proxyuser:proxy-pw-1@proxy.example:3128",
    "TGWATCH_EVIDENCE__TSA_URL": "https://tsauser:tsa-pw-2@tsa.example/stamp?api_key=tsa-key-3&mode=sha256",
    "TGWATCH_TELEGRAM__API_HASH": "0123456789abcdef0123456789abcdef",
    "TGWATCH_MONGODB_URI": "mongodb://admin:mongo-pw-4@db.example/?replicaSet=rs0",
}
SECRETS = ("proxy-pw-1", "tsa-pw-2", "tsa-key-3", "0123456789abcdef", "mongo-pw-4")


def config_show(tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")} | ENV
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(tmp_path / "d"), "config", "show", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def differences(a: Any, b: Any, path: str = "") -> dict[str, tuple[Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return {k: v for key in a for k, v in differences(a[key], b[key], f"{path}.{key}".lstrip(".")).items()}
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {
            k: v
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for k, v in differences(x, y, f"{path}[{i}]").items()
        }
    return {} if a == b else {path: (a, b)}


def test_config_show_masks_url_passwords_and_secret_fields(tmp_path: Path) -> None:
    text = config_show(tmp_path)
    as_json = json.loads(config_show(tmp_path, "--json"))
    for secret in SECRETS:
        assert secret not in text and secret not in json.dumps(as_json)
    assert as_json["http"]["proxy"] == "http://proxyuser:****@proxy.example:3128"
    assert as_json["evidence"]["tsa_url"] == "https://tsauser:****@tsa.example/stamp?api_key=****&mode=sha256"
    assert as_json["mongodb_uri"] == "mongodb://admin:****@db.example/?replicaSet=rs0"
    assert as_json["telegram"]["api_hash"] == config.settings.MASK
    assert "proxyuser:****@proxy.example:3128" in text and "tsauser:****@tsa.example" in text


def test_nothing_but_the_secrets_changes() -> None:
    old = dict(os.environ)
    try:
        os.environ.update(ENV)
        settings = config.load()
    finally:
        os.environ.clear()
        os.environ.update(old)
    plain = settings.model_dump(mode="json")
    plain["mongodb_uri"] = settings.mongodb_uri.get_secret_value() if settings.mongodb_uri else None
    plain["telegram"]["api_hash"] = ENV["TGWATCH_TELEGRAM__API_HASH"]
    changed = differences(plain, settings.masked())
    assert set(changed) == {"mongodb_uri", "http.proxy", "evidence.tsa_url", "telegram.api_hash"}
    assert settings.masked()["evidence"]["key_path"] is None and settings.masked()["media"]["hash_workers"] is None


class Hook(BaseModel):
    name: str = "alerts"
    url: str = "https://hooks.example/in?token=hook-tok-1&channel=ops"
    headers: dict[str, str] = Field(default_factory=lambda: {"X-Api-Key": "hdr-key-2", "Accept": "text/plain"})


class FutureSettings(BaseModel):
    """Settings a later change might add: masked by their names alone."""

    webhook_token: str = "tok-value-1"
    client_secret: str = "secret-value-2"
    signing_key: str = "key-value-3"
    smtp_password_file: str = "pw-value-4"
    admin_password: str = "pw-value-5"
    salt_hash: str = "hash-value-6"
    backup_keys: list[str] = Field(default_factory=lambda: ["k-value-7", "k-value-8"])
    key_path: str = "/etc/tgwatch/key.pem"
    hash_workers: int = 4
    token_ttl_seconds: int = 600
    upstream: str = "socks5://sockuser:sock-pw-9@127.0.0.1:1080"
    hooks: list[Hook] = Field(default_factory=lambda: [Hook()])
    note: str = "see https://example.org/docs for details"


def test_new_settings_are_masked_by_their_names() -> None:
    model = FutureSettings()
    masked = config.masked_data(model)
    text = json.dumps(masked)
    for secret in ("tok-value-1", "secret-value-2", "key-value-3", "pw-value-4", "pw-value-5", "hash-value-6",
                   "k-value-7", "k-value-8", "sock-pw-9", "hook-tok-1", "hdr-key-2"):  # fmt: skip
        assert secret not in text
    assert masked["upstream"] == "socks5://sockuser:****@127.0.0.1:1080"
    assert masked["hooks"][0]["url"] == "https://hooks.example/in?token=****&channel=ops"
    assert masked["backup_keys"] == [config.settings.MASK] * 2
    assert set(differences(model.model_dump(mode="json"), masked)) == {
        "webhook_token", "client_secret", "signing_key", "smtp_password_file", "admin_password", "salt_hash",
        "backup_keys[0]", "backup_keys[1]", "upstream", "hooks[0].url", "hooks[0].headers.X-Api-Key",
    }  # fmt: skip
