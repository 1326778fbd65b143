"""The headers that belong to one connection rather than to the message (RFC 9110, 7.6.1),
which a proxy drops: plain strings, for the guard's relay (tornado) and the sandbox's gateway
(``http.server``) alike.
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


def end_to_end(
    headers: Iterable[tuple[str, str]], connection: Iterable[str], also: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``headers`` a proxy passes on: not the hop-by-hop ones, not
    those the message's ``connection`` lines name, not those named in ``also``."""
    dropped = HOP_BY_HOP | connection_tokens(connection) | {name.lower() for name in also}
    return [(name, value) for name, value in headers if name.lower() not in dropped]
