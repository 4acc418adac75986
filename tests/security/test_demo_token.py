"""``tgwatch demo`` leaves no working detector token behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import assert_no_server_left, tgwatch

pytestmark = pytest.mark.xdist_group("cli")


def test_demo_revokes_its_detector_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tgwatch(data, "demo")
    tokens = [json.loads(line) for line in tgwatch(data, "tokens", "list", "--json").splitlines()]
    demo = [t for t in tokens if t["name"] == "demo-detector"]
    assert demo, "the demo created its detector token"
    assert all(t["revoked_at"] for t in demo), f"active demo token left: {demo}"
    assert_no_server_left(data)
