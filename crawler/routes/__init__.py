"""The route-declaration interface between the features and the API shell.

Each feature's ``api.py`` declares its endpoints on a ``RouteTable`` (``table``), reads what it needs
from the app through the keys in ``context`` and authenticates console forms with ``auth``;
``crawler.api`` (the shell) builds the server from those declarations. Features import this
package, never ``crawler.api``.
"""
