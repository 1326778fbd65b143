"""What every answer of the guard shares: the guard's state, its header, the credential check,
the refusal, and logs that never name a query string.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast

from tornado import web
from tornado.httputil import url_concat

from ..i18n import N_, _, using
from . import GUARD_HEADER, auth

log = logging.getLogger("scnet_magic.guard")

UPSTREAM_HOST = "127.0.0.1"  # the only place the guard ever connects to, whatever a request says
REALM = "scnet-guard"
STATUS_TIMEOUT = 2.0

LOGIN_PATH = "/.scnet-guard/login"
BUSY_RETRY = 5  # seconds: Retry-After when no turn for a check came soon enough

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
    turns: auth.Turns = field(default_factory=auth.Turns)
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
    LOCKED = "locked"  # too many failures from this visitor
    BUSY = "busy"  # no turn for a check soon: too many visitors are trying passwords


class GuardHandler(web.RequestHandler):
    """What every answer of the guard shares: its header, the credential check, quiet logs."""

    # The request headers that carried the guard's own credential: they never reach the service.
    consumed_headers: frozenset[str] = frozenset()

    @property
    def guard(self) -> Guard:
        # From the application's settings rather than initialize(): tornado sets the default
        # headers (the guard's id among them) before initialize() runs, and again on errors.
        return cast(Guard, self.settings["guard"])

    def set_default_headers(self) -> None:
        self.set_header(GUARD_HEADER, self.guard.guard_id)
        self.clear_header("Server")  # nothing to tell a visitor about what runs here

    def compute_etag(self) -> None:
        return None  # tornado would otherwise add an ETag of its own to the service's answers

    @property
    def language(self) -> str:
        return auth.preferred_language(self.request.headers.get("Accept-Language"))

    def say(self, message: str) -> str:
        with using(self.language):
            return _(message)

    async def credentials(self) -> Verdict:
        """Check the session cookie, else the password in the guard's header, HTTP Basic,
        Bearer or ``token``; never a password in the query string.

        Every header that carried the guard's password is consumed, even beside a valid
        cookie; an ``Authorization`` with anything else is the service's and passes on.
        """
        headers = self.request.headers
        # (header name, password offered): the guard's own header first, then Authorization.
        offered = [
            (auth.PASSWORD_HEADER.lower(), auth.header_text(value))
            for value in headers.get_list(auth.PASSWORD_HEADER)
        ]
        candidate = auth.authorization_password(headers.get("Authorization"))
        if candidate is not None:
            offered.append(("authorization", candidate))
        cookies = auth.cookie_values(headers.get("Cookie"))
        if any(self.guard.sessions.valid(session) for session in cookies):
            verdict = Verdict.PASS
        elif not offered:
            return Verdict.MISSING
        else:
            verdict = await self.attempt(offered[0][1])
        if verdict is Verdict.PASS:
            self.consumed_headers = frozenset(
                name for name, password in offered if self.guard.accepted.recognises(password)
            ) | {auth.PASSWORD_HEADER.lower()}
        return verdict

    async def attempt(self, candidate: str) -> Verdict:
        """One password attempt by this visitor: counted before it is checked, and checked
        only in a turn of its own (see :class:`.auth.Turns`)."""
        throttle, headers = self.guard.throttle, self.request.headers
        # The socket's peer is never taken from a header: a visitor cannot pick it.
        peer = self.request.remote_ip or ""
        visitor = auth.visitor_key(peer, headers.get_list("X-Forwarded-For"), headers.get("Cookie"))
        if throttle.locked(visitor):
            return Verdict.LOCKED
        if throttle.trusted(visitor):
            # An API client already accepted: its password passes without a turn or scrypt.
            # Anything else is surely wrong (the password is known), and is answered and
            # counted as such at once: a "busy" answer would tell it apart for free.
            if self.guard.accepted.recognises(candidate):
                return Verdict.PASS
            return Verdict.WRONG if throttle.reserve(visitor) else Verdict.LOCKED
        if not throttle.reserve(visitor):
            return Verdict.LOCKED
        if not await self.guard.turns.take(visitor):
            throttle.refund(visitor)  # nothing was checked: nothing was learnt
            return Verdict.BUSY
        if candidate and await self.guard.password_matches(candidate):
            throttle.succeeded(visitor)
            return Verdict.PASS
        return Verdict.WRONG  # the reservation stays: it was a failure

    def refuse(self, verdict: Verdict, next_path: str | None = None) -> None:
        """Answer a request that did not authenticate, and end it; with ``next_path``, with the
        sign-in page that leads there."""
        headers, given = self.request.headers, next_path is not None
        browser = given or (
            self.request.method in ("GET", "HEAD") and "text/html" in headers.get("Accept", "")
        )
        next_path = next_path or self.request.uri
        mode = headers.get("Sec-Fetch-Mode", "navigate").lower()
        if verdict in (Verdict.LOCKED, Verdict.BUSY):
            locked = verdict is Verdict.LOCKED
            self.set_header("Retry-After", str(int(auth.LOCKOUT) if locked else BUSY_RETRY))
            message = auth.TOO_MANY_ATTEMPTS if locked else auth.BUSY
            if browser:
                self.page(429, message, next_path)
            else:
                self.plain(429, message)
        elif not given and mode not in ("navigate", "websocket"):
            # A page's fetch or XHR (browsers name the mode of every request they send). No
            # WWW-Authenticate: the browser would answer it with its own password box over the
            # page. The page (or the person) learns where to sign in instead.
            login = url_concat(LOGIN_PATH, {"next": auth.safe_next(self.request.uri)})
            body = {"error": self.say(AUTHENTICATION_REQUIRED), "login": login}
            self.answer(401, "application/json", json.dumps(body))
        elif browser:
            self.page(401, auth.WRONG_PASSWORD if verdict is Verdict.WRONG else None, next_path)
        else:
            # Only for non-browsers: a browser would answer it with its own password dialog.
            self.set_header("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
            self.plain(401, AUTHENTICATION_REQUIRED)

    def page(self, status: int, problem: str | None, next_path: str | None = "/") -> None:
        """The sign-in page; it names the browser as a visitor of its own for the throttle."""
        nonce = secrets.token_urlsafe(16)
        self.set_header("X-Frame-Options", "DENY")
        # No framing (clickjacking), no script or style but the page's own, and forms posted
        # to this site only.
        self.set_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        # On the page a browser fetches before it signs in; an answer to a sign-in sets no
        # cookie but the session's.
        cookies = self.request.headers.get("Cookie")
        if self.request.method == "GET" and not auth.cookie_values(cookies, auth.VISITOR_COOKIE):
            self.guard_cookie(auth.VISITOR_COOKIE, secrets.token_urlsafe(16), auth.VISITOR_LIFETIME)
        page = auth.login_page(self.language, next_path or "/", problem, nonce=nonce)
        self.answer(status, "text/html; charset=utf-8", page)

    def guard_cookie(self, name: str, value: str, max_age: int) -> None:
        """Set a cookie of the guard's (never readable by the page's scripts)."""
        attributes = f"Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
        self.add_header("Set-Cookie", f"{name}={value}; {attributes}")

    def plain(self, status: int, message: str) -> None:
        self.answer(status, "text/plain; charset=utf-8", self.say(message) + "\n")

    def answer(self, status: int, content_type: str, body: str) -> None:
        """End the request with an answer of the guard's own, which no cache keeps."""
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

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
