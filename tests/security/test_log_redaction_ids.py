"""Redaction masks secrets, not the ids an operator needs to follow an authorization through the logs."""

from __future__ import annotations

import io
import uuid

from foundation import logs

API_HASH = "0123456789abcdef0123456789abcdef"
TOKEN = "tgw_" + "s3cr3tT0kenValue" * 2


def test_authorization_ids_survive_and_credentials_do_not() -> None:
    out = io.StringIO()
    logs.configure("DEBUG", "json", out)
    log = logs.get_logger("test")
    auth_id = uuid.uuid4().hex
    log.info("authorization granted", authorization=auth_id, case="AUTH-2026-0042")
    log.info("free text", note=f"authorization {auth_id} revoked; api_hash {API_HASH}")
    log.info("headers", headers={"Authorization": f"Bearer {TOKEN}"}, authorization="Basic dXNlcjpwYXNzd29yZA==")
    log.info("telegram", note=f"api_hash={API_HASH} and api hash: {API_HASH}")
    text = out.getvalue()
    assert text.count(auth_id) == 2, "the authorization id is no secret"
    assert "AUTH-2026-0042" in text
    for secret in (API_HASH, TOKEN, "dXNlcjpwYXNzd29yZA=="):
        assert secret not in text
