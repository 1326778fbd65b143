"""Transports: what sends a request and reads the platform's envelope from its answer.

:class:`HttpTransport` is the one ``requests`` wrapper: a total deadline and a size limit on
every answer, TLS always verified, redirects never followed (a 307 would re-send the start
request), every failure named here as a :class:`~scnet_magic.errors.ScnetError`.
:class:`MockTransport` answers in memory with a handler function.
"""

from __future__ import annotations

import errno
import http.client
import json
import logging
import re
import socket
import ssl
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ._version import __version__
from .endpoints import Endpoint
from .errors import (
    ApiError,
    HttpError,
    MalformedResponse,
    RequestTimeout,
    TransportError,
    one_line,
)
from .i18n import N_, Message, _
from .server_text import MAX_DEPTH, ServerText, TooDeep

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_BODY = 2 * 1024 * 1024  # an API answer is a few KiB; a larger body is not an answer
BODY_PREVIEW = 200  # characters of an unexpected body quoted in an error
MAX_CONNECT_TIMEOUT = 10.0

MAY_HAVE_ARRIVED = N_(
    "The request may have reached the platform: check the instance before starting again."
)

# Request headers that carry a credential, and what a server's echo of one is shown as.
CREDENTIAL_HEADERS = {"token": "token", "accessKey": "access key", "signature": "signature"}


def _hide_unparsed_headers(record: logging.LogRecord) -> bool:
    """urllib3 logs the header lines it could not parse as sent, which may echo the token:
    the warning stays, those lines go."""
    if str(record.msg).startswith("Failed to parse headers") and len(record.args or ()) == 2:
        url = record.args[0]  # type: ignore[index]
        record.args = (url, "header lines not logged: they may echo the request's token")
        record.exc_info = record.exc_text = None
    return True


logging.getLogger("urllib3.connection").addFilter(_hide_unparsed_headers)


# Bytes of a body kept for its preview: room for the characters quoted, and for a credential
# that straddles the cut to be hidden whole.
_PREVIEW_BYTES = BODY_PREVIEW * 4 + 1024


def preview(body: bytes, clean: ServerText | None = None) -> str:
    """The start of a body as one short line, its credentials hidden before the cut."""
    clean = clean or ServerText()
    return one_line(clean.text(body[:_PREVIEW_BYTES].decode("utf-8", "replace")), BODY_PREVIEW)


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return N_("Check the token, and that the base URL is your region's address.")
    if status == 404:
        return N_("Check the base URL: it should be your region's address, without a path.")
    if status >= 500:
        return N_("The platform or a gateway in front of it failed; try again later.")
    return N_("Check the base URL.")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests and urllib3 nest them several deep)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        # urllib3 keeps the wrapped exception in .reason; ssl.SSLError keeps a string there.
        reason = getattr(item, "reason", None)
        todo.extend([item.__cause__, item.__context__])
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


def _forget_variables(exc: BaseException) -> None:
    """Drop the variables of the frames a transport failure went through: they hold the
    request with its token, which ``%xmode Verbose`` would print. The frames stay."""
    for item in _chain(exc):
        traceback.clear_frames(item.__traceback__)


CONNECTION_REFUSED = N_("connection refused")
HOST_NOT_FOUND = N_("host name not found")


def reason_of(exc: BaseException, clean: ServerText | None = None) -> Message:
    """A short, human reason for a transport failure; what it quotes cleaned by ``clean``."""
    clean = clean or ServerText()
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return Message(
                N_("TLS certificate not trusted ({reason})"),
                reason=clean.text(str(item.verify_message), multiline=False),
            )
    for item in chain:
        if isinstance(item, ssl.SSLError):
            reason = str(item.reason or item.__class__.__name__)
            return Message(N_("TLS error ({reason})"), reason=clean.text(reason, multiline=False))
        if isinstance(item, socket.gaierror):
            return Message(HOST_NOT_FOUND)
        if isinstance(item, ConnectionRefusedError):
            return Message(CONNECTION_REFUSED)
        # Before ConnectionResetError: RemoteDisconnected is a subclass of it.
        if isinstance(item, http.client.RemoteDisconnected):
            return Message(N_("the server closed the connection without answering"))
        if isinstance(item, ConnectionResetError):
            return Message(N_("connection reset by the server"))
        if isinstance(item, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            return Message(N_("the server closed the connection early"))
        if isinstance(item, OSError) and item.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return Message(N_("network unreachable"))
    # urllib3 puts object reprs in front of its messages; keep the readable tail.
    text = re.sub(r"<[^>]*>:?\s*", "", str(chain[-1])).strip()
    text = text.splitlines()[0][:BODY_PREVIEW] if text else type(chain[-1]).__name__
    return Message(clean.text(text, multiline=False))  # (no message id: written as it is)


# OpenSSL's verification results (X509_V_ERR_*) that have their own advice.
_CERT_DATES = {9, 10}  # not yet valid, expired
_CERT_NAMES = {62, 64}  # host name mismatch, IP address mismatch


def _tls_hint(exc: BaseException, address_name: str = N_("the base URL")) -> Message:
    """What to do about a failed TLS connection, by what the verification said."""
    address = Message(address_name)
    codes = {e.verify_code for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)}
    if codes & _CERT_NAMES:
        return Message(
            N_("The certificate is for another address; check {address}."), address=address
        )
    if codes & _CERT_DATES:
        return Message(N_("The certificate is out of date, or this machine's clock is wrong."))
    if codes:
        return Message(
            N_(
                "The certificate is not from an authority this machine trusts; check {address}. "
                "Behind a proxy that inspects HTTPS, set REQUESTS_CA_BUNDLE to its CA file."
            ),
            address=address,
        )
    return Message(N_("Check {address} and the network."), address=address)


@dataclass(frozen=True)
class Request:
    """One API request. ``address_name``: what hints call the address it goes to;
    ``resend_hint``: what to do when a POST's answer was lost (it may have been acted on)."""

    method: str
    url: str
    # Credentials travel here (a token, an access key and its signature): in no repr.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, str] | None = None
    body: dict[str, Any] | None = None
    address_name: str = N_("the base URL")
    resend_hint: str = MAY_HAVE_ARRIVED
    # Credentials the request knows but does not send (the secret key at sign-in), each with
    # what it is ("secret key"): an answer that holds one shows it hidden all the same.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    def server_text(self) -> ServerText:
        """The cleaner of this request's answer: the credentials it carried hidden."""
        sent = {
            value: name
            for key, name in CREDENTIAL_HEADERS.items()
            if (value := self.headers.get(key))
        }
        return ServerText({**sent, **self.secrets})

    @classmethod
    def to(cls, endpoint: Endpoint, address: str, token: str, **fields: Any) -> Request:
        """A request to ``endpoint`` at ``address`` (its host's), with ``token`` in its header."""
        return cls(
            endpoint.method,
            address + endpoint.path,
            {"token": token},
            **{"address_name": endpoint.host.address_name, **fields},
        )


@dataclass(frozen=True)
class Response:
    """An answer as it came: status, reason phrase, headers and the body's bytes."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def __repr__(self) -> str:
        # The body may echo the request's credentials: the status and the size only.
        return f"Response(status={self.status}, {len(self.body)} bytes)"

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Response:
        """An answer whose body is ``payload`` as JSON (what a handler usually returns)."""
        return cls(status, json.dumps(payload, ensure_ascii=False).encode())


class Closing:
    """What holds connections: :meth:`close` releases them, as leaving a ``with`` does."""

    def close(self) -> None:
        """Release connections (nothing to release by default)."""

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport(Closing):
    """Sends a :class:`Request` and returns its :class:`Response`; :meth:`call` reads the
    envelope the same way whatever sent it."""

    def send(self, request: Request) -> Response:
        raise NotImplementedError

    def call(self, request: Request) -> dict[str, Any]:
        """Send ``request``; the envelope of a successful answer, every string cleaned."""
        started = time.monotonic()
        response = self.send(request)
        log.debug(
            "%s %s -> %s in %.3f s (%d bytes)",
            request.method,
            urlsplit(request.url).path,
            response.status,
            time.monotonic() - started,
            len(response.body),
        )
        return _envelope(response, request.server_text())


class MockTransport(Transport):
    """Answers every request with ``handler(request)``, in memory, for answer shapes; the size
    limit applies as on the network. What only a socket shows needs :class:`HttpTransport`."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler

    def send(self, request: Request) -> Response:
        response = self.handler(request)
        if len(response.body) > MAX_BODY:
            raise _too_large(response.status, response.body, request.server_text())
        return response


class HttpTransport(Transport):
    """One keep-alive ``requests.Session``: where HTTP happens."""

    def __init__(self, timeout: float, *, retries: int = 2, purpose: str = "") -> None:
        self.timeout = timeout
        self._session = requests.Session()
        # Only failures to connect are retried: they happen before a byte of the request is
        # sent. A read error on a POST means the platform may already be running the command,
        # and starting twice runs it twice, so no other error is retried (nor is an answer
        # with a Retry-After header: it is an answer, and urllib3 would make it an error).
        policy = Retry(
            total=retries,
            connect=retries,
            read=0,
            redirect=0,
            status=0,
            other=0,
            backoff_factor=0.2,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        adapter = HTTPAdapter(max_retries=policy)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        agent = f"scnet-magic/{__version__}"
        self._session.headers["User-Agent"] = f"{agent} ({purpose})" if purpose else agent
        # The body is read as it comes (size and time bounded), never decompressed: a gzip
        # answer would read as garbage, and the bound would count compressed bytes.
        self._session.headers["Accept-Encoding"] = "identity"

    def __repr__(self) -> str:
        return f"HttpTransport(timeout={self.timeout!r})"

    def close(self) -> None:
        self._session.close()

    def send(self, request: Request) -> Response:
        method = request.method
        clean = request.server_text()
        parts = urlsplit(request.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        deadline = time.monotonic() + self.timeout
        failures = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
        try:
            response = self._session.request(
                method,
                request.url,
                params=request.params,
                json=request.body,
                # Every POST says it is JSON, as the platform's examples do, even one
                # without a body (renewal: json=None sends none).
                headers={
                    **request.headers,
                    "Accept": "application/json",
                    **({"Content-Type": "application/json"} if method == "POST" else {}),
                },
                timeout=(min(self.timeout, MAX_CONNECT_TIMEOUT), self.timeout),
                allow_redirects=False,
                verify=True,
                stream=True,
            )
        except failures as exc:
            raise self._failed(request, origin, exc, clean) from exc
        with response:
            try:
                # Hidden at once, so that not even a frame's variables keep an echoed credential.
                raw = clean.hide_bytes(_read_body(response, deadline, clean))
            except failures as exc:
                raise self._cut_off(request, origin, response.status_code, exc, clean) from exc
        return Response(response.status_code, raw, response.headers, response.reason or "")

    def _failed(
        self, request: Request, origin: str, exc: BaseException, clean: ServerText
    ) -> TransportError:
        """No answer came: why, and what to do (a POST's answer lost may have been acted on)."""
        _forget_variables(exc)
        check = Message(
            N_("Check {address} and the network."), address=Message(request.address_name)
        )
        timeout = f"{self.timeout:g}"
        posted = request.method == "POST"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            text = N_("could not connect to {origin} within {timeout} s")
            return RequestTimeout(text, check, origin=origin, timeout=timeout)
        if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
            hint = request.resend_hint if posted else N_("Try again, or raise the timeout.")
            text = N_("no answer from {origin} within {timeout} s")
            return RequestTimeout(text, hint, origin=origin, timeout=timeout)
        reason = reason_of(exc, clean)
        if isinstance(exc, requests.exceptions.SSLError):
            text = N_("secure connection to {origin} failed: {reason}")
            tls_hint = _tls_hint(exc, request.address_name)
            return TransportError(text, tls_hint, origin=origin, reason=reason)
        refused = reason.id in (CONNECTION_REFUSED, HOST_NOT_FOUND)
        advice = check if refused or not posted else request.resend_hint
        text = N_("request to {origin} failed: {reason}")
        return TransportError(text, advice, origin=origin, reason=reason)

    def probe(
        self, url: str, timeout: float, header: str = ""
    ) -> tuple[int | None, str, str | None]:
        """One GET to a service's URL without a token: the HTTP status (None when no answer
        came), a short reason, and the value of ``header`` in the answer (None when it has
        none). A failed connection is an answer too ("not up yet")."""
        try:
            response = self._session.get(
                url, timeout=timeout, allow_redirects=False, verify=True, stream=True
            )
        except requests.exceptions.Timeout:
            return None, _("no answer within {timeout} s").format(timeout=f"{timeout:.3g}"), None
        except requests.exceptions.ConnectionError as exc:
            _forget_variables(exc)
            # A status line that is not HTTP comes back in the exception's text.
            return None, str(reason_of(exc)), None
        with response:
            reason = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
            reason = ServerText().text(reason, multiline=False)
            return response.status_code, reason, response.headers.get(header)

    def _cut_off(
        self, request: Request, origin: str, status: int, exc: BaseException, clean: ServerText
    ) -> TransportError:
        """The status line came but the body did not: say so, and how it ended."""
        _forget_variables(exc)
        hint = request.resend_hint if request.method == "POST" else N_("Try again.")
        if any(
            isinstance(e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) for e in _chain(exc)
        ):
            return RequestTimeout(
                N_("the answer from {origin} (HTTP {status}) did not finish within {timeout} s"),
                hint,
                origin=origin,
                status=status,
                timeout=f"{self.timeout:g}",
            )
        return TransportError(
            N_("the answer from {origin} (HTTP {status}) was cut off: {reason}"),
            hint,
            origin=origin,
            status=status,
            reason=reason_of(exc, clean),
        )


def _too_large(status: int, start: bytes, clean: ServerText) -> MalformedResponse:
    return MalformedResponse(
        Message(N_("body larger than {size} MiB"), size=MAX_BODY // (1024 * 1024)),
        status,
        preview(start, clean),
    )


def _read_body(response: requests.Response, deadline: float, clean: ServerText) -> bytes:
    """The body, read against a total deadline (``requests``' timeout is per read: a trickle
    would never end) and a size limit."""
    body = bytearray()
    raw = response.raw
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise urllib3.exceptions.ReadTimeoutError(None, None, "deadline")  # type: ignore[arg-type]
        # Each read waits at most until the deadline, not a whole timeout past it.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(remaining, 0.001))
        chunk = raw.read1(64 * 1024)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_BODY:
            raise _too_large(response.status_code, bytes(body[:_PREVIEW_BYTES]), clean)


def _envelope(response: Response, clean: ServerText) -> dict[str, Any]:
    status, reason = response.status, clean.text(response.reason, multiline=False)
    raw = clean.hide_bytes(response.body)
    if 300 <= status < 400:
        location = clean.text(response.headers.get("Location", ""), multiline=False)
        raise HttpError(
            status,
            reason,
            _("redirected to {location}").format(location=location) if location else "",
            N_(
                "The base URL may be out of date; use your region's address. Redirects are not "
                "followed, so nothing was started twice."
            ),
        )
    try:
        # Cleaned once parsed, so that escaped forms (\u0041, \/) of a credential are hidden.
        parsed = clean.json(json.loads(raw))
    except (RecursionError, TooDeep):
        # json.loads runs out of stack on deep nesting; anything deeper than MAX_DEPTH would
        # later, where it is shown.
        raise MalformedResponse(
            Message(N_("JSON nested more than {depth} levels deep"), depth=MAX_DEPTH),
            status,
            preview(raw, clean),
        ) from None
    except ValueError:
        if status >= 400:
            raise HttpError(status, reason, preview(raw, clean), _status_hint(status)) from None
        raise MalformedResponse(
            N_("not valid JSON"),
            status,
            preview(raw, clean),
            N_("The base URL may not be the API address."),
        ) from None
    if not isinstance(parsed, dict) or "code" not in parsed:
        if status >= 400:
            raise HttpError(status, reason, preview_json(parsed), _status_hint(status))
        raise MalformedResponse(N_("no 'code' field"), status, preview_json(parsed))
    code = parsed["code"]
    # Documented as a string; some answers carry a number.
    if isinstance(code, bool) or not isinstance(code, (str, int)):
        raise MalformedResponse(
            Message(N_("'code' is {type}, expected a string"), type=json_type(code)),
            status,
            preview_json(parsed),
        )
    code_text = str(code).strip()
    if code_text != "0":
        msg = parsed.get("msg")
        raise ApiError(code_text, optional_text(msg) or "", status)
    if status >= 300:
        raise HttpError(status, reason, preview_json(parsed), _status_hint(status))
    return parsed


def optional_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def json_type(value: object) -> Message:
    """What a parsed JSON value is, in JSON's words (the server speaks JSON, not Python)."""
    if value is None:
        return Message("null")
    if isinstance(value, bool):
        return Message(N_("a boolean"))
    if isinstance(value, (int, float)):
        return Message(N_("a number"))
    if isinstance(value, str):
        return Message(N_("a string"))
    return Message(N_("an array") if isinstance(value, list) else N_("an object"))


def wrong_type(message: str, value: object, *, quoted: bool = True) -> MalformedResponse:
    """A JSON value of the wrong type in an answer: ``message`` names its ``{type}``."""
    shown = preview_json(value) if quoted else ""
    return MalformedResponse(Message(message, type=json_type(value)), 200, shown)


def preview_json(value: object) -> str:
    return preview(json.dumps(value, ensure_ascii=False).encode())


class HoldsTransport(Closing):
    """What calls the platform through a transport (the client, the account calls): one handed
    in belongs to the caller, who closes it; one made here is closed with its holder."""

    def __init__(self, transport: Transport | None, timeout: float, retries: int) -> None:
        self._own_transport = transport is None
        self.transport = transport or HttpTransport(timeout, retries=retries)

    def close(self) -> None:
        if self._own_transport:
            self.transport.close()
