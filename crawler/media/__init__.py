"""Media at crawl time: fetch, hash, quarantine, record sightings, match against known-hash lists.

``crawler/hashing`` is the pure library (signal types, decoding, the PDQ index); this package wires
it to the store and to ingest.
"""
