"""The web console: server-rendered pages over the investigator service, for people with a token.

``routes.register`` declares every page through the shared ``RouteTable``; ``session`` holds sign-in,
the session cookie and CSRF; templates live in ``templates/`` and the one stylesheet and script in
``static/`` (no build step, no inline script or style: the CSP forbids both).
"""
