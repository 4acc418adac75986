"""Discovery: Telegram rooms found on aggregator sites, in ingested messages and in tips become
*candidates*; triage reads their preview pages and scores them; staff approve them into targets.

    sources ──► DiscoveryService.record(sightings) ──► candidates (new)
    discover run ──► tme_preview spider ──► DiscoveryService.apply_triage ──► (triaged, scored)
    candidates approve ──► targets.create_target ──► the scheduler crawls it

Modules: ``models`` (sightings, statuses, which links are rooms), ``repo`` (the candidates
collection), ``scoring`` (the term list), ``service`` (the one entry point), ``snowball`` (the
ingest stage), ``targets`` (the hand-off to the scheduler), ``run`` (crawl/triage drivers), ``api``.
"""
