"""Store-wide figures for ``tgwatch db status``: documents per declared collection.

Here rather than in the CLI because it names every collection by a computed name, which only the
storage layer may do (each collection otherwise has one owner class, ``storage/schema.py``).
"""

from __future__ import annotations

from storage import schema
from storage.client import Store, translate_errors


async def collection_counts(store: Store) -> dict[str, int]:
    """Estimated documents per collection of the schema, in schema order."""
    with translate_errors("db status"):
        return {c.name: await store.db[c.name].estimated_document_count() for c in schema.COLLECTIONS}
