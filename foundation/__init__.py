"""The foundation every other package builds on: records, the error tree, t.me links, logging, keys,
metric declarations, the egress guard, message catalogs, and the contracts sources and features
exchange.

Why a top-level package of its own (docs/architecture.md): ``storage/``, the sources (``spiders/``,
``telegram_watch/``) and the features in ``crawler/`` all need these, and they need none of them
back. Inside ``crawler/`` they tied every package into one import cycle with it.
"""
