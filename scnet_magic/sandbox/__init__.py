"""A local stand-in for the SCNet notebook OpenAPI, on loopback.

Used by the test suite, the example notebooks and anyone without an account::

    python -m scnet_magic.sandbox [--execute] [--port N] [--host H]

By default the start endpoint answers like the platform's documented example (nothing runs).
With ``execute=True`` it runs the start command with ``/bin/sh`` in a work directory and gives
each started (notebook, port) a small reverse proxy ("gateway") that plays the external URL,
on a host of its own, ``c-<id>.localhost``, where this machine resolves it (else ``127.0.0.1``).

It plays the platform's three hosts on three loopback ports, as SCNet lays them out: the login
host (``login_url``: the signed token request for one account, ``user``, ``access_key``,
``secret_key``), the platform host (``ac_url``: region discovery, renewal, token state) and the
region's AI address (``base_url``: the notebook APIs). Each answers only its own paths, so a
call sent to the wrong host fails as it would on SCNet. Its notebooks live: they boot, stop and
keep one custom service each.

It runs in the user's kernel (``%scnet_sandbox``) and listens on a port anyone on the machine
can reach: it keeps nothing per request, reads a body only after accepting the token, and
bounds its connections (``server.MAX_CONNECTIONS``, each closed after ``server.IDLE_TIMEOUT``
idle seconds).
"""

from .cli import main
from .core import Sandbox

__all__ = ["Sandbox", "main"]
