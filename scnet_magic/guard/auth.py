"""Who may pass the guard: the password's hash, the sessions, the throttles and the login page.

Nothing here touches the network; :mod:`.base` asks these objects and answers the visitor.
The password itself is never kept: only a salted scrypt hash, compared in constant time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .. import i18n
from ..i18n import N_, _, using

# "__Host-": a browser keeps it only from this very host, over HTTPS, for Path=/, so that a
# neighbouring host of the same domain cannot plant one of its own.
COOKIE_NAME = "__Host-scnet_guard_session"
# A random name for each browser that saw the sign-in page: how the throttle tells visitors
# apart when they all come through the gateway's address. It proves nothing; it only sorts.
VISITOR_COOKIE = "__Host-scnet_guard_visitor"
VISITOR_LIFETIME = 365 * 24 * 3600
SESSION_LIFETIME = 7 * 24 * 3600  # seconds: a week of work on a notebook without signing in
MAX_SESSIONS = 1000  # the oldest go first; a flood of logins cannot grow memory without end
MAX_FAILURES = 10  # password checks per visitor within FAILURE_WINDOW; once they have failed ...
FAILURE_WINDOW = 60.0
LOCKOUT = 60.0  # ... that visitor waits until the oldest failure is this old
MAX_TRACKED_CLIENTS = 10_000
MAX_NEXT_LENGTH = 2048
MAX_KEY_PART = 64  # of a visitor's claimed address or cookie: a key is never large
# The header that carries the guard's password when the service has an Authorization of its
# own (an API key): the guard consumes it, and the service's Authorization passes untouched.
PASSWORD_HEADER = "X-Scnet-Guard-Password"
CHECK_BURST = 5
CHECKS_PER_MINUTE = 30
MAX_WAITING = 32  # requests waiting for a turn, all visitors together ...
MAX_WAITING_PER_VISITOR = 2  # ... and of one visitor
WAIT_LIMIT = 20.0  # seconds a request waits for its turn before it is told to come back

WRONG_PASSWORD = N_("Wrong password.")
TOO_MANY_ATTEMPTS = N_("Too many failed attempts. Try again in a minute.")
BUSY = N_("Too many sign-in attempts at the moment. Try again in a few seconds.")

Clock = Callable[[], float]
T = TypeVar("T")


def _scrypt(password: str, salt: bytes) -> bytes:
    # 16 MiB and about 50 ms a check: slow for a guesser who stole the hash, quick enough for a
    # person signing in. The guard runs the checks one at a time, off its event loop.
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


@dataclass(frozen=True, repr=False)
class PasswordHash:
    """A salted scrypt hash of the guard's password; the password is not kept."""

    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt))

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(_scrypt(candidate, self.salt), self.digest)

    def __repr__(self) -> str:  # a hash in a log or traceback is still something to guess against
        return "PasswordHash(...)"


class Accepted:
    """The password, once scrypt has accepted it, recognised again by an HMAC under a key of
    this process alone.

    An API client with HTTP Basic sends the password with every request: scrypt on each (some
    50 ms, one at a time) would hold the service to about twenty requests a second. A wrong
    candidate is still checked by scrypt, so guessing stays as slow as before.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._mac: bytes | None = None

    def _of(self, candidate: str) -> bytes:
        return hmac.digest(self._key, candidate.encode("utf-8", "surrogateescape"), "sha256")

    def recognises(self, candidate: str) -> bool:
        return self._mac is not None and hmac.compare_digest(self._of(candidate), self._mac)

    def remember(self, candidate: str) -> None:
        self._mac = self._of(candidate)


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()


class Sessions:
    """Signed-in browsers, in this process's memory only, by the SHA-256 of their session id:
    the table holds nothing a visitor could send."""

    def __init__(self, *, lifetime: float = SESSION_LIFETIME, clock: Clock = time.monotonic):
        self._lifetime = lifetime
        self._clock = clock
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def start(self) -> str:
        session_id = secrets.token_urlsafe(32)
        self._expiry[_digest(session_id)] = self._clock() + self._lifetime
        while len(self._expiry) > MAX_SESSIONS:
            self._expiry.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        key = _digest(session_id)
        if self._expiry.get(key, float("-inf")) > self._clock():
            return True
        self._expiry.pop(key, None)  # expired
        return False

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._expiry.pop(_digest(session_id), None)


class Throttle:
    """Password checks per visitor (see :func:`visitor_key`): each is counted as a failure
    *before* the check runs and taken back if it succeeds, so requests already waiting cannot
    run more checks than the limit allows. A visitor with MAX_FAILURES failures within
    FAILURE_WINDOW gets no check until the oldest of them has aged out.

    A visitor whose check succeeded is trusted: its password, once scrypt accepted it, is
    recognised cheaply from then on (as long as its own failures do not lock it).
    """

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._trusted: OrderedDict[str, None] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= self._clock() - FAILURE_WINDOW:
            failures.popleft()
        return failures

    def locked(self, key: str) -> bool:
        return len(self._recent(key)) >= MAX_FAILURES

    def reserve(self, key: str) -> bool:
        """Count one check against ``key`` before it runs; False when ``key`` may not have one."""
        failures = self._recent(key)
        if len(failures) >= MAX_FAILURES:
            return False
        failures.append(self._clock())
        _keep_newest(self._failures, key, failures)
        return True

    def refund(self, key: str) -> None:
        """Take back a reservation whose check did not run."""
        failures = self._failures.get(key)
        if failures:
            failures.pop()

    def succeeded(self, key: str) -> None:
        """The reserved check succeeded: take it back (the visitor's other failures stay: one
        good request does not clear a stranger's count) and trust the visitor."""
        self.refund(key)
        _keep_newest(self._trusted, key, None)

    def trusted(self, key: str) -> bool:
        return key in self._trusted


def _keep_newest(table: OrderedDict[str, T], key: str, value: T) -> None:
    """Put ``key`` last (the newest stays longest), forgetting the oldest beyond the bound."""
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_TRACKED_CLIENTS:
        table.popitem(last=False)


class Turns:
    """Turns for the expensive password checks: at most CHECK_BURST at once and
    CHECKS_PER_MINUTE a minute overall, whoever asks (a token bucket), handed out round-robin
    across the visitors waiting for one.

    :class:`Throttle` holds a visitor to its own share, but a visitor is only what a request
    claims to be (an address the gateway may not append, a cookie anyone can make up): this
    bound holds whatever the requests claim, and one flooding visitor delays the owner by one
    turn, not by its whole queue.
    """

    def __init__(
        self,
        *,
        burst: int = CHECK_BURST,
        per_minute: int = CHECKS_PER_MINUTE,
        wait_limit: float = WAIT_LIMIT,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0  # turns per second
        self._wait_limit = wait_limit
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._wake: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now

    async def take(self, visitor: str) -> bool:
        """Wait for a turn to check ``visitor``'s password; False when there is none soon."""
        self._refill()
        if not self._waiting and self._tokens >= 1:
            self._tokens -= 1
            return True
        queue = self._waiting.get(visitor, deque())
        waiting = sum(len(waiters) for waiters in self._waiting.values())
        if waiting >= MAX_WAITING or len(queue) >= MAX_WAITING_PER_VISITOR:
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        self._waiting[visitor] = queue
        self._schedule()
        try:
            await asyncio.wait_for(asyncio.shield(turn), self._wait_limit)
        except asyncio.TimeoutError:
            if turn.done():  # granted just as the wait ran out: the turn was taken, use it
                return True
            turn.cancel()
            queue.remove(turn)
            if not queue:
                del self._waiting[visitor]
            return False
        return True

    def _schedule(self) -> None:
        if self._wake is None and self._waiting:
            delay = max(0.0, (1 - self._tokens) / self._rate)
            self._wake = asyncio.get_running_loop().call_later(delay, self._grant)

    def _grant(self) -> None:
        self._wake = None
        self._refill()
        while self._tokens >= 1 and self._waiting:
            visitor, queue = next(iter(self._waiting.items()))
            turn = queue.popleft()
            if queue:
                self._waiting.move_to_end(visitor)  # the next visitor's turn comes first
            else:
                del self._waiting[visitor]
            if not turn.done():
                turn.set_result(None)
                self._tokens -= 1
        self._schedule()


def visitor_key(peer: str, forwarded_for: list[str], cookie_header: str | None) -> str:
    """Who a visitor is, for the throttle: the socket's peer, the last address of
    ``X-Forwarded-For`` (the one the gateway appends, where it appends one) and the browser's
    visitor cookie. Behind the gateway the peer is the gateway's, the same for everyone."""
    last_hop = forwarded_for[-1].split(",")[-1].strip() if forwarded_for else ""
    visitor = next(iter(cookie_values(cookie_header, VISITOR_COOKIE)), "")
    return f"{peer} {last_hop[:MAX_KEY_PART]} {visitor[:MAX_KEY_PART]}"


def basic_password(authorization: str | None) -> str | None:
    """The password of an HTTP Basic ``Authorization`` header (any user name), else None."""
    scheme, _sep, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (nor ASCII, even), or not UTF-8
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def authorization_password(authorization: str | None) -> str | None:
    """What an ``Authorization`` header offers as the guard's password: Basic's password, or
    the token of ``Bearer`` (API clients such as the openai SDK) or ``token`` (Jupyter's)."""
    password = basic_password(authorization)
    if password is not None:
        return password
    # Only spaces and tabs are stripped: str.strip() would also eat the bytes of a UTF-8
    # token that read as Latin-1 white space (0x85, 0xa0).
    scheme, _sep, token = (authorization or "").strip(" \t").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() in ("bearer", "token") and token:
        return header_text(token)
    return None


def header_text(value: str) -> str:
    """A header value as the client wrote it: HTTP headers arrive as Latin-1, and a client
    that sends UTF-8 (a password with Chinese in it) meant UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def cookie_values(cookie_header: str | None, name: str = COOKIE_NAME) -> list[str]:
    """The values of the cookies called ``name`` (the guard's session ids by default): every
    one, since a junk one planted before the real one must not sign the visitor out."""
    values = []
    for part in (cookie_header or "").split(";"):
        key, _sep, value = part.partition("=")
        if key.strip() == name and value.strip():
            values.append(value.strip())
    return values


def without_guard_cookie(cookie_header: str | None) -> str | None:
    """The ``Cookie`` header minus the guard's own cookies (the service never sees a session
    id); the others pass as the browser wrote them."""
    if cookie_header is None:
        return None
    kept = [
        part.strip()
        for part in cookie_header.split(";")
        if part.strip() and part.split("=", 1)[0].strip() not in (COOKIE_NAME, VISITOR_COOKIE)
    ]
    return "; ".join(kept) or None


# A path of this site: one leading "/", then no second "/" or "\" (browsers read "//host" and
# "/\host" as another host) and no control character or space (browsers drop tabs and newlines,
# so "/\t/host" would become "//host").
_SAME_ORIGIN_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x20\x7f]*")


def safe_next(value: str | None) -> str:
    """Where to send a browser after it signs in: ``value`` if a path of this site, else ``/``."""
    if value and len(value) <= MAX_NEXT_LENGTH and _SAME_ORIGIN_PATH.fullmatch(value):
        return value
    return "/"


def preferred_language(accept_language: str | None) -> str:
    """``"zh"`` when the browser prefers Chinese to English, else ``"en"``."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, *params = item.split(";")
        quality = 1.0
        for param in params:
            key, _eq, number = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        language = i18n.known(tag.strip())
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else "en"


_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style nonce="{nonce}">
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 4px rgba(0, 0, 0, .15); }}
h1 {{ font-size: 1.3rem; margin-top: 0; }}
input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; margin: .5rem 0; }}
button {{ padding: .5rem 1.2rem; }}
.problem {{ color: #b00020; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{explanation}</p>
{problem}
<form method="post" action="/.scnet-guard/login">
<label for="password">{password_label}</label>
<input id="password" name="password" type="password" autocomplete="current-password"
 autofocus required>
<input type="hidden" name="next" value="{next}">
<button type="submit">{submit}</button>
</form>
</main>
<script nonce="{nonce}">
// The address's #fragment never reaches a server: carry it across sign-in here.
var next = document.querySelector("input[name=next]");
if (location.hash && next.value.indexOf("#") < 0) next.value += location.hash;
</script>
</body>
</html>
"""


def login_page(language: str, next_path: str, problem: str | None = None, *, nonce: str) -> str:
    """The sign-in page, in ``language``: it says nothing about the service behind it.
    ``nonce`` lets its own style and script run under the page's Content-Security-Policy."""
    with using(language):
        texts = {
            "title": _("Sign in"),
            "explanation": _("This service is protected by a password."),
            "password_label": _("Password"),
            "submit": _("Sign in"),
        }
        shown_problem = _(problem) if problem else None
    escaped = {key: html.escape(value) for key, value in texts.items()}
    return _PAGE.format(
        lang="zh-CN" if language == "zh" else "en",
        nonce=nonce,
        next=html.escape(safe_next(next_path), quote=True),
        problem=f'<p class="problem">{html.escape(shown_problem)}</p>' if shown_problem else "",
        **escaped,
    )
