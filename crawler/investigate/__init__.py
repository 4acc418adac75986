"""Investigator queries over collected evidence: search, context, media, exports, and their API.

``service.InvestigateService`` holds the queries (no HTTP); ``api.register`` exposes them under
``/api/v1``; ``export`` streams search results as JSON Lines or CSV. The console
(``crawler.console``) renders the same service, so the API and the pages can never disagree.
"""
