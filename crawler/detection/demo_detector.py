"""The detector ``make demo`` runs. It is not a model and does not pretend to be one: it reports
``positive`` exactly when the job says the media matched an imported hash list, and ``unknown``
otherwise (it cannot tell anything from pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def hash_list_detector(path: Path, job: dict[str, Any]) -> dict[str, Any]:
    matched = bool(job.get("context", {}).get("matched"))
    if matched:
        return {"decision": "positive", "labels": {"hash_list_match": 1.0}, "detector_version": "demo-1"}
    return {"decision": "unknown", "labels": {}, "detector_version": "demo-1"}
