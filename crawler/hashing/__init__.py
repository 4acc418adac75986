"""Media hashing and known-hash matching (pure library: no database here).

- ``signals``: signal types (sha256, md5, pdq, vpdq), one module each, their indexes and registry
- ``digests``: streaming SHA-256 + MD5
- ``images`` / ``video``: safe decode, PDQ and vPDQ (with vPDQ's match rule)
- ``index``: ``PdqIndex``, an exact multi-index-hashing PDQ matcher
- ``pool``: ``HashPool``, process-pool hashing with back-pressure
- ``lists``: hash-list file parsers (csv, jsonl, stopncii, threatexchange)
- ``fetch``: web media fetch with caps, sniffing and error mapping
"""
