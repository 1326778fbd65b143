"""The headers that belong to one connection rather than to the message (RFC 9110, 7.6.1):
what a proxy drops before passing a message on.

Plain strings, with no HTTP stack behind them: the guard's relay (tornado) and the sandbox's
gateway (``http.server``) both use them.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",  # so spelled in RFC 2616's list
        "transfer-encoding",
        "upgrade",
    }
)


def connection_tokens(lines: Iterable[str]) -> frozenset[str]:
    """The tokens of a message's Connection header lines, lower case: ``keep-alive, close`` is
    two, as are two Connection lines (each names headers to drop)."""
    return frozenset(
        token.strip().lower() for line in lines for token in line.split(",") if token.strip()
    )
