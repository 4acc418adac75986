"""Per-stream read positions, written only after the batch they describe is stored."""

from __future__ import annotations

from foundation.models import Checkpoint, utcnow
from storage.client import Store, translate_errors


class CheckpointRepo:
    def __init__(self, store: Store) -> None:
        self._coll = store["checkpoints"]

    async def get(self, stream: str) -> Checkpoint | None:
        with translate_errors("read checkpoint"):
            doc = await self._coll.find_one({"_id": stream})
        return Checkpoint.from_doc(doc) if doc else None

    async def save(self, checkpoint: Checkpoint) -> Checkpoint:
        saved = checkpoint.model_copy(update={"updated_at": utcnow()})
        with translate_errors("save checkpoint"):
            await self._coll.replace_one({"_id": saved.stream}, saved.to_doc(), upsert=True)
        return saved
