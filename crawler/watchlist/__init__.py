"""Consent-based watchlist: people who asked for help are found, under their consent, in what tgwatch
collects. See docs/watchlist.md for the rails (no search for an arbitrary face, embeddings only,
encrypted, erased on withdrawal)."""
