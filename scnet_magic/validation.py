"""Every input check, once, before any request is built: each returns the value in the form
the API expects or raises :class:`~scnet_magic.errors.InvalidInput` with a hint. A rejected
value is quoted back cut short, and a credential never.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

from . import i18n
from .errors import InvalidInput
from .i18n import N_, Message, _

T = TypeVar("T")

_SHOWN_LIMIT = 60  # characters of a rejected value quoted back
_MAX_ID_DIGITS = 100  # ids have 19 digits; anything this long is not an id


def shown_value(value: object) -> str:
    """A rejected value for an error message: its repr, cut short (a huge int is described:
    Python refuses to turn one of over 4300 digits into text)."""
    if isinstance(value, int) and not -(10**_SHOWN_LIMIT) < value < 10**_SHOWN_LIMIT:
        return _("a number too long to show")
    text = repr(value)
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "…"


def validate_notebook_id(value: object) -> str:
    """A notebook id as the exact string of digits the API expects (ids are 19-digit numbers
    above 2**53: a float would already have lost digits)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(
            N_("notebook id must be a string of digits, not {type}"), type=type(value).__name__
        )
    # Checked before str(): Python refuses to turn an int of over 4300 digits into text.
    if isinstance(value, int) and not -(10**_MAX_ID_DIGITS) < value < 10**_MAX_ID_DIGITS:
        raise _id_too_long()
    text = str(value).strip()
    if not text:
        raise InvalidInput(
            N_("notebook id is empty"), N_("Give --id or set a default notebook id.")
        )
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(
            N_("notebook id must contain only digits, got {value}"),
            _ID_HINT,
            value=shown_value(text),
        )
    if len(text) > _MAX_ID_DIGITS:
        raise _id_too_long()
    return text


def _id_too_long() -> InvalidInput:
    return InvalidInput(
        N_("notebook id is too long (more than {count} digits)"), _ID_HINT, count=_MAX_ID_DIGITS
    )


_ID_HINT = N_(
    "Ids are numbers of about 19 digits: copy one from %scnet_notebooks, scnet notebooks "
    "or the SCNet console."
)


_PORT_HINT = N_("Give the port the service listens on inside the instance, such as 7860.")


def validate_port(value: object) -> int:
    """A TCP port from 1 to 65535, given as an int or a string of digits."""
    if isinstance(value, bool):
        raise InvalidInput(N_("port must be a whole number from 1 to 65535"), _PORT_HINT)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise InvalidInput(
                N_("port must be a whole number from 1 to 65535, got {value}"),
                _PORT_HINT,
                value=shown_value(value),
            )
        if len(text.lstrip("0")) > 5:  # above 65535, and maybe too long for int()
            raise InvalidInput(
                N_("port must be from 1 to 65535, got {value}"), _PORT_HINT, value=shown_value(text)
            )
        value = int(text)
    if not isinstance(value, int):
        raise InvalidInput(
            N_("port must be a whole number from 1 to 65535, not {type}"),
            _PORT_HINT,
            type=type(value).__name__,
        )
    if not 1 <= value <= 65535:
        raise InvalidInput(
            N_("port must be from 1 to 65535, got {value}"), _PORT_HINT, value=shown_value(value)
        )
    return value


def validate_command(value: object) -> str | None:
    """The shell command, or None to omit it (open the path to an already running service)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(N_("command must be text, not {type}"), type=type(value).__name__)
    if not value.strip():
        raise InvalidInput(
            N_("command is empty"),
            N_("Leave the command out to reach a service that is already running."),
        )
    if "\x00" in value:
        raise InvalidInput(N_("command must not contain a NUL character"))
    return value


class Secret(str):
    """A token, a secret key or a password: the text itself, but its repr (what tracebacks
    with variables, debuggers and logged containers show) hides it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


def hidden(value: T) -> T | Secret:
    """``value`` as a :class:`Secret` when it is text (else as it is, to be refused later): for
    a function's first line, so that its frame's variable no longer shows the secret."""
    return Secret(value) if isinstance(value, str) else value


def _header_safe(value: object, label: str) -> str:
    """A credential that can travel in an HTTP header without being able to inject another
    header; ``label`` names it, as messages never echo the value."""
    what = Message(label)
    if not isinstance(value, str):
        raise InvalidInput(N_("{what} must be text"), what=what)
    text = value.strip()
    if not text:
        raise InvalidInput(N_("{what} is empty"), what=what)
    if not text.isascii():
        raise InvalidInput(N_("{what} must contain only ASCII characters"), what=what)
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text):
        raise InvalidInput(
            N_("{what} must not contain spaces, line breaks or control characters"), what=what
        )
    return text


Validator = Callable[[object], str]
validate_account_name: Validator = partial(_header_safe, label=N_("account name"))
validate_access_key: Validator = partial(_header_safe, label=N_("access key"))


def validate_token(value: object) -> Secret:
    return Secret(_header_safe(value, N_("token")))


def validate_secret_key(value: object) -> Secret:
    """The secret key of an access key pair (it signs the request and is never sent)."""
    return Secret(_header_safe(value, N_("secret key")))


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() == "localhost":
        return True
    import ipaddress  # only a URL with an address in it gets here

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked_url(value: object, label: str) -> str:
    """An https URL (or http on loopback only), without credentials, trailing slash removed;
    ``label`` names the setting."""
    what = Message(label)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(N_("{what} is empty"), what=what)
    text = value.strip()
    # Before anything that quotes the URL back: credentials would end up in the output. A base
    # URL has no other use for "@", so any "@" is refused, whatever else is wrong.
    if "@" in text:
        raise InvalidInput(N_("{what} must not contain a user name or password"), what=what)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidInput(
            N_("{what} is not a valid URL: {value}"), what=what, value=shown_value(text)
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            N_("{what} must start with https:// and name a host, got {value}"),
            what=what,
            value=shown_value(text),
        )
    if parts.query or parts.fragment:
        raise InvalidInput(N_("{what} must not contain a query or fragment"), what=what)
    if parts.scheme == "http" and not is_loopback_host(host):
        raise InvalidInput(
            N_("{what} must use https:// (plain http:// is allowed only for loopback): {value}"),
            what=what,
            value=shown_value(text),
        )
    return text.rstrip("/")


validate_base_url: Validator = partial(_checked_url, label=N_("base URL"))
validate_login_url: Validator = partial(_checked_url, label=N_("login URL"))
# The platform address (``/ac/...`` calls).
validate_ac_url: Validator = partial(_checked_url, label=N_("platform URL"))


def validate_timeout(value: object) -> float:
    """A positive, finite number of seconds."""
    if isinstance(value, bool):
        raise InvalidInput(N_("timeout must be a positive number of seconds"))
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan  # refused below, as every other value that is not a number
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(
            N_("timeout must be a positive number of seconds, got {value}"),
            value=shown_value(value),
        )
    return seconds


def validate_language(value: object) -> str:
    """``"en"`` or ``"zh"`` for a language setting such as "zh", "zh_CN", "zh-CN", "EN_us"."""
    found = i18n.known(value)
    if found is None:
        raise InvalidInput(
            N_("language must be en or zh (also zh_CN, zh-CN, en_US...), not {value}"),
            value=repr(value)[:40],
        )
    return found


NOTEBOOK_STATUSES = ("Creating", "Restarting", "Running", "Terminated", "Failed", "Shutting")
# "Shutting down" is how tables name the API's "Shutting": either may be typed.
_STATUS_SPELLINGS = {status.lower(): status for status in NOTEBOOK_STATUSES}
_STATUS_SPELLINGS["shutting down"] = "Shutting"


def validate_status(value: object) -> str:
    """A notebook status, spelled as the API spells it, whatever the case it was typed in."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in _STATUS_SPELLINGS:
        return _STATUS_SPELLINGS[text]
    raise InvalidInput(
        N_("status must be one of {statuses}, got {value}"),
        N_("For example --status Running."),
        statuses=", ".join(NOTEBOOK_STATUSES),
        value=shown_value(value),
    )


def validate_wait_url(url: object) -> str:
    """An http(s) URL with a host, to wait for."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(N_("the URL to wait for is empty"))
    text = url.strip()
    try:
        parts = urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise InvalidInput(
            N_("the URL to wait for must start with https:// or http://: {url}"), url=repr(text)
        )
    return text


def is_local_url(url: str) -> bool:
    """True for URLs that only make sense inside the instance (0.0.0.0, loopback, private)."""
    import ipaddress

    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return address.is_loopback or address.is_unspecified or address.is_private


@dataclass(frozen=True)
class StartRequest:
    """One start request, checked: what is sent, and nothing unchecked can get in."""

    notebook_id: str
    port: int
    command: str | None = None

    def body(self) -> dict[str, str]:
        """The JSON body: every value a string, ``command`` left out when None."""
        body = {"id": self.notebook_id, "customizePort": str(self.port)}
        if self.command is not None:
            body["command"] = self.command
        return body


def start_request(notebook_id: object, port: object, command: object = None) -> StartRequest:
    """The start request for these values, every one checked."""
    return StartRequest(
        validate_notebook_id(notebook_id), validate_port(port), validate_command(command)
    )


# The platform writes the address inside Chinese prose, often followed directly by Chinese
# punctuation with no space, so the match stops at whitespace, quotes, brackets and that
# punctuation; ASCII punctuation that ends a sentence is trimmed afterwards.
_URL_PATTERN = r"https?://[^\s<>\"'`，。；：）」』】》、！？（「]+"
_TRAILING = ".,;:)]}\"'!?"


def extract_url(text: object) -> str | None:
    """The first http(s) URL in free text, without trailing punctuation; None if there is none."""
    if not isinstance(text, str):
        return None
    for match in re.finditer(_URL_PATTERN, text, re.IGNORECASE):  # re caches the compiled form
        url = match.group(0).rstrip(_TRAILING)
        try:
            if urlsplit(url).hostname:
                return url
        except ValueError:  # not a URL after all ("http://[::1" with no closing bracket)
            continue
    return None


def validate_guard_password(value: object) -> Secret:
    """A password for the guard: any text but empty, on one line (the guard reads it as one
    line); never quoted, and a :class:`Secret`."""
    if not isinstance(value, str):
        raise InvalidInput(N_("the password must be text"))
    if not value:
        raise InvalidInput(
            N_("the password is empty"), N_("A service protected by an empty password is not.")
        )
    if any(ch in value for ch in "\r\n\x00"):
        raise InvalidInput(N_("the password must not contain line breaks or NUL characters"))
    return Secret(value)
