"""A local stand-in for the SCNet notebook OpenAPI, on loopback.

Used by the test suite, the example notebooks and anyone without an account::

    python -m scnet_magic.sandbox [--execute] [--port N] [--host H]

By default the start endpoint answers like the platform's documented example (nothing runs).
With ``execute=True`` it runs the start command with ``/bin/sh`` in a work directory and gives
each started (notebook, port) a small reverse proxy ("gateway") that plays the external URL.
``Sandbox.fault`` makes the start endpoint misbehave in the ways a client must survive.

It also plays the login address for one account (``user``, ``access_key``, ``secret_key``):
the signed token endpoint, renewal, token state and region discovery, whose addresses lead back
to the sandbox itself. ``suspended``, ``addresses_enabled`` and ``clock_skew`` play an account
with no tokens, a region with no enabled address, and a clock that is off.
"""

from .cli import main
from .core import Sandbox
from .data import RecordedRequest
from .faults import FAULTS

__all__ = ["FAULTS", "RecordedRequest", "Sandbox", "main"]
