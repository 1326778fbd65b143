"""What every answer of the guard shares: the guard's state, its header, the credential check,
the refusal, and logs that never name a query string.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

from tornado import web

from ..i18n import N_, _, using
from . import auth
from .manage import GUARD_HEADER

log = logging.getLogger("scnet_magic.guard")

UPSTREAM_HOST = "127.0.0.1"  # the only place the guard ever connects to, whatever a request says
REALM = "scnet-guard"
STATUS_TIMEOUT = 2.0

AUTHENTICATION_REQUIRED = N_("Authentication required.")


@dataclass
class Guard:
    """What one guard process knows: where the service is, and who may reach it."""

    upstream_port: int
    guard_id: str
    password: auth.PasswordHash
    sessions: auth.Sessions = field(default_factory=auth.Sessions)
    throttle: auth.Throttle = field(default_factory=auth.Throttle)
    accepted: auth.Accepted = field(default_factory=auth.Accepted)
    # One scrypt at a time, off the event loop: a burst of guesses costs the guard one core and
    # 16 MiB, not one of each per guess.
    hashing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="scnet-guard-hash")
    )

    async def password_matches(self, candidate: str) -> bool:
        if self.accepted.recognises(candidate):
            return True
        loop = asyncio.get_running_loop()
        matches = await loop.run_in_executor(self.hashing, self.password.matches, candidate)
        if matches:
            self.accepted.remember(candidate)
        return matches

    async def upstream_accepts(self) -> bool:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(UPSTREAM_HOST, self.upstream_port), STATUS_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        return True

    def close(self) -> None:
        self.hashing.shutdown(wait=False)


class Verdict(enum.Enum):
    PASS = "pass"
    MISSING = "missing"  # no credential at all
    WRONG = "wrong"
    LOCKED = "locked"  # too many failures from this address


class GuardHandler(web.RequestHandler):
    """What every answer of the guard shares: its header, the credential check, quiet logs."""

    # The request headers that carried the guard's own credential: they never reach the service.
    consumed_headers: frozenset[str] = frozenset()

    @property
    def guard(self) -> Guard:
        # From the application's settings rather than initialize(): tornado sets the default
        # headers (the guard's id among them) before initialize() runs, and again on errors.
        guard: Guard = self.settings["guard"]
        return guard

    def set_default_headers(self) -> None:
        self.set_header(GUARD_HEADER, self.guard.guard_id)
        self.clear_header("Server")  # nothing to tell a visitor about what runs here

    def compute_etag(self) -> None:
        return None  # tornado would otherwise add an ETag of its own to the service's answers

    @property
    def peer(self) -> str:
        # The socket's peer, never a header: a visitor cannot pick whose failures count.
        return self.request.remote_ip or ""

    @property
    def language(self) -> str:
        return auth.preferred_language(self.request.headers.get("Accept-Language"))

    def say(self, message: str) -> str:
        with using(self.language):
            return _(message)

    def looks_like_browser(self) -> bool:
        return self.request.method in ("GET", "HEAD") and "text/html" in self.request.headers.get(
            "Accept", ""
        )

    async def credentials(self) -> Verdict:
        """Check the session cookie, else HTTP Basic; never a password in the query string."""
        if self.guard.sessions.valid(auth.cookie_value(self.request.headers.get("Cookie"))):
            return Verdict.PASS
        candidate = auth.basic_password(self.request.headers.get("Authorization"))
        if candidate is None:
            return Verdict.MISSING
        verdict = await self.attempt(candidate)
        if verdict is Verdict.PASS:
            self.consumed_headers = frozenset({"authorization"})
        return verdict

    async def attempt(self, candidate: str) -> Verdict:
        """One password attempt, counted against this client address when it fails."""
        throttle = self.guard.throttle
        if throttle.locked(self.peer):
            return Verdict.LOCKED
        if candidate and await self.guard.password_matches(candidate):
            throttle.succeeded(self.peer)
            return Verdict.PASS
        throttle.failed(self.peer)  # the next attempt meets the lockout, if this made one
        return Verdict.WRONG

    def refuse(self, verdict: Verdict) -> None:
        """Answer a request that did not authenticate, and end it."""
        if verdict is Verdict.LOCKED:
            self.set_header("Retry-After", str(int(auth.LOCKOUT)))
            if self.looks_like_browser():
                self.page(429, auth.TOO_MANY_ATTEMPTS)
            else:
                self.plain(429, auth.TOO_MANY_ATTEMPTS)
        elif self.looks_like_browser():
            problem = auth.WRONG_PASSWORD if verdict is Verdict.WRONG else None
            self.page(401, problem, next_path=self.request.uri)
        else:
            # Only for non-browsers: a browser would answer it with its own password dialog.
            self.set_header("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
            self.plain(401, AUTHENTICATION_REQUIRED)

    def page(self, status: int, problem: str | None, next_path: str | None = "/") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(auth.login_page(self.language, next_path or "/", problem))

    def plain(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(self.say(message) + "\n")

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Tornado's own message names the whole URI, and a visitor may have put a password in
        # its query string: name the path only.
        if isinstance(value, web.HTTPError):
            return
        log.error(
            "error answering %s %s",
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb) if typ and value else None,
        )
