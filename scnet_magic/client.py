"""ScnetClient and its Transport: the one place where HTTP happens.

One ``requests.Session`` per client (keep-alive), an explicit timeout on every request, TLS
verification always on, redirects never followed (a 307 would re-send the start request), and
every transport failure translated into a :class:`~scnet_magic.errors.ScnetError` here.
"""

from __future__ import annotations

import errno
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __version__, config, i18n, models, readiness
from .errors import (
    ApiError,
    HttpError,
    InvalidInput,
    MalformedResponse,
    RequestTimeout,
    ScnetError,
    TransportError,
    one_line,
)
from .i18n import N_, _, in_language
from .models import NotebookList, ServiceUrl, StartResult
from .readiness import Readiness, WaitProgress

if TYPE_CHECKING:
    from .login import TokenState

log = logging.getLogger(__name__)
_T = TypeVar("_T")

API = "/ai/openapi/v2/notebook"
START_PATH = f"{API}/customize-service/actions/start"
SERVICE_URL_PATH = f"{API}/customize-service/url"
LIST_PATH = f"{API}/list"

NOTEBOOK_STATUSES = ("Creating", "Restarting", "Running", "Terminated", "Failed", "Shutting")
MAX_BODY = 2 * 1024 * 1024  # an API answer is a few KiB; a larger body is not an answer
BODY_PREVIEW = 200  # characters of an unexpected body quoted in an error
MAX_CONNECT_TIMEOUT = 10.0
PAGE_SIZE = 20  # the documented default; larger sizes are undocumented
MAX_PAGES = 1000

_MAY_HAVE_ARRIVED = N_(
    "The request may have reached the platform: check the instance before starting again."
)


def _retry_policy(retries: int) -> Retry:
    # Only failures to connect are retried: they happen before a byte of the request is sent.
    # A read error on a POST means the platform may already be running the command, and
    # starting twice runs it twice, so read, status, redirect and other errors are not retried.
    return Retry(
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


def _preview(body: bytes) -> str:
    """The start of a body as one short line, for error messages."""
    return one_line(body[: BODY_PREVIEW * 4].decode("utf-8", "replace"), BODY_PREVIEW)


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return _("Check the token, and that the base URL is your region's address.")
    if status == 404:
        return _("Check the base URL: it should be your region's address, without a path.")
    if status >= 500:
        return _("The platform or a gateway in front of it failed; try again later.")
    return _("Check the base URL.")


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
    """Drop the variables of the frames a transport failure went through.

    requests, urllib3 and http.client hold the request as sent, token header included, in
    their variables, and a traceback that shows variables (``%xmode Verbose``) would print
    them. The frames stay, so the chained traceback still says where it failed.
    """
    for item in _chain(exc):
        traceback.clear_frames(item.__traceback__)


def _reason(exc: BaseException) -> str:
    """A short, human reason for a transport failure."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return _("TLS certificate not trusted ({reason})").format(reason=item.verify_message)
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return _("TLS error ({reason})").format(reason=item.reason or item.__class__.__name__)
        if isinstance(item, socket.gaierror):
            return _("host name not found")
        if isinstance(item, ConnectionRefusedError):
            return _("connection refused")
        # Before ConnectionResetError: RemoteDisconnected is a subclass of it.
        if isinstance(item, http.client.RemoteDisconnected):
            return _("the server closed the connection without answering")
        if isinstance(item, ConnectionResetError):
            return _("connection reset by the server")
        if isinstance(item, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            return _("the server closed the connection early")
        if isinstance(item, OSError) and item.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return _("network unreachable")
    # urllib3 puts object reprs in front of its messages; keep the readable tail.
    text = re.sub(r"<[^>]*>:?\s*", "", str(chain[-1])).strip()
    return text.splitlines()[0][:BODY_PREVIEW] if text else type(chain[-1]).__name__


# OpenSSL's verification results (X509_V_ERR_*) that have their own advice.
_CERT_DATES = {9, 10}  # not yet valid, expired
_CERT_NAMES = {62, 64}  # host name mismatch, IP address mismatch


def _tls_hint(exc: BaseException, address_name: str = N_("the base URL")) -> str:
    """What to do about a failed TLS connection, by what the verification said."""
    address_name = _(address_name)
    codes = {e.verify_code for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)}
    if codes & _CERT_NAMES:
        return _("The certificate is for another address; check {address}.").format(
            address=address_name
        )
    if codes & _CERT_DATES:
        return _("The certificate is out of date, or this machine's clock is wrong.")
    if codes:
        return _(
            "The certificate is not from an authority this machine trusts; check {address}. "
            "Behind a proxy that inspects HTTPS, set REQUESTS_CA_BUNDLE to its CA file."
        ).format(address=address_name)
    return _("Check {address} and the network.").format(address=address_name)


def _is_local(url: str) -> bool:
    """True for URLs that only make sense inside the instance (0.0.0.0, loopback, private)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_private


class Transport:
    """One keep-alive ``requests.Session``: the one place where HTTP happens.

    Every request has an explicit timeout and a total deadline, never follows a redirect, and
    every transport failure becomes a :class:`ScnetError` here. Subclasses add the credentials
    (:class:`ScnetClient` the token; the login module a signature).
    """

    # What the hints call the address this transport talks to.
    address_name = N_("the base URL")
    # Hint for a POST whose answer was lost: it may have been acted on.
    unsure_post_hint = _MAY_HAVE_ARRIVED

    def __init__(self, timeout: float, *, retries: int = 2) -> None:
        self.timeout = timeout
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=_retry_policy(retries))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = f"scnet-magic/{__version__}"

    def close(self) -> None:
        self._session.close()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the envelope of a successful answer."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        started = time.monotonic()
        deadline = started + self.timeout
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers={**headers, "Accept": "application/json"},
                timeout=(min(self.timeout, MAX_CONNECT_TIMEOUT), self.timeout),
                allow_redirects=False,
                verify=True,
                stream=True,
            )
            try:
                raw = _read_body(response, deadline)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                _forget_variables(exc)
                raise self._cut_off(method, origin, response.status_code, exc) from exc
            finally:
                response.close()
        except ScnetError:
            raise
        except requests.exceptions.ConnectTimeout as exc:
            _forget_variables(exc)
            raise RequestTimeout(
                _("could not connect to {origin} within {timeout} s").format(
                    origin=origin, timeout=f"{self.timeout:g}"
                ),
                _("Check {address} and the network.").format(address=_(self.address_name)),
            ) from exc
        except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
            _forget_variables(exc)
            raise self._timeout_error(method, origin) from exc
        except requests.exceptions.SSLError as exc:
            _forget_variables(exc)
            raise TransportError(
                _("secure connection to {origin} failed: {reason}").format(
                    origin=origin, reason=_reason(exc)
                ),
                _tls_hint(exc, self.address_name),
            ) from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            _forget_variables(exc)
            reason = _reason(exc)
            refused = reason in (_("connection refused"), _("host name not found"))
            raise TransportError(
                _("request to {origin} failed: {reason}").format(origin=origin, reason=reason),
                _("Check {address} and the network.").format(address=_(self.address_name))
                if refused or method != "POST"
                else _(self.unsure_post_hint),
            ) from exc
        log.debug(
            "%s %s -> %s in %.3f s (%d bytes)",
            method,
            parts.path,
            response.status_code,
            time.monotonic() - started,
            len(raw),
        )
        return _envelope(response, raw)

    def _cut_off(self, method: str, origin: str, status: int, exc: BaseException) -> TransportError:
        """The status line came but the body did not: say so, and how it ended."""
        hint = _(self.unsure_post_hint) if method == "POST" else _("Try again.")
        if any(
            isinstance(e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) for e in _chain(exc)
        ):
            return RequestTimeout(
                _(
                    "the answer from {origin} (HTTP {status}) did not finish within {timeout} s"
                ).format(origin=origin, status=status, timeout=f"{self.timeout:g}"),
                hint,
            )
        return TransportError(
            _("the answer from {origin} (HTTP {status}) was cut off: {reason}").format(
                origin=origin, status=status, reason=_reason(exc)
            ),
            hint,
        )

    def _timeout_error(self, method: str, origin: str) -> RequestTimeout:
        return RequestTimeout(
            _("no answer from {origin} within {timeout} s").format(
                origin=origin, timeout=f"{self.timeout:g}"
            ),
            _(self.unsure_post_hint) if method == "POST" else _("Try again, or raise the timeout."),
        )


class ScnetClient(Transport):
    """A client for the SCNet notebook OpenAPI.

    Settings not given here come from the environment or the user config file
    (see :mod:`scnet_magic.config`). The token is kept private: it is sent in the ``token``
    header and appears in no repr, message or log.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        *,
        retries: int = 2,
        language: str | None = None,
    ) -> None:
        # The language of this client's messages and errors ("en", "zh"); None: SCNET_LANG,
        # the config file, then the locale, looked up at each call.
        self.language = i18n.normalize(language) if language is not None else None
        with i18n.using(self.language):
            settings = config.resolve(token=token, base_url=base_url, timeout=timeout)
            self.__token = settings.require_token()
        self.base_url = settings.base_url
        self.timeout = settings.timeout
        self.token_source = settings.token_source
        super().__init__(settings.timeout, retries=retries)

    def __repr__(self) -> str:
        return f"ScnetClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    # -- API -------------------------------------------------------------------------------

    @in_language
    def start_service(
        self, notebook_id: str | int, port: int | str, command: str | None = None
    ) -> StartResult:
        """Run ``command`` in the instance and open an external address to ``port``.

        Sent exactly once: starting is not idempotent, so it is never retried once the
        request may have reached the platform.
        """
        body = models.start_body(notebook_id, port, command)
        envelope = self._call("POST", START_PATH, body=body)
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise MalformedResponse(
                _("'data' is {type}, expected an object").format(type=_json_type(data)),
                200,
                _preview_json(data),
            )
        exec_success = data.get("execSuccess")
        if not isinstance(exec_success, bool):
            raise MalformedResponse(
                _("'execSuccess' is {type}, expected true or false").format(
                    type=_json_type(exec_success)
                ),
                200,
                _preview_json(exec_success),
            )
        error_msg = _optional_text(data.get("errorMsg"))
        output = _optional_text(data.get("output"))
        url = models.extract_url(error_msg)
        if url is None:
            found = models.extract_url(output)
            # Command output usually names the address the service listens on inside the
            # instance (http://0.0.0.0:7860); that is not the external address.
            url = found if found and not _is_local(found) else None
        if url is None:
            url = self._service_url_quietly(body["id"])
        return StartResult(
            code="0",
            msg=str(envelope.get("msg") or ""),
            exec_success=exec_success,
            error_msg=error_msg,
            output=output,
            url=url,
            notebook_id=body["id"],
            port=int(body["customizePort"]),
            raw=envelope,
        )

    @in_language
    def service_url(self, notebook_id: str | int) -> ServiceUrl:
        """The custom service's external address and status (endpoint 2)."""
        checked_id = models.validate_notebook_id(notebook_id)
        envelope = self._call("GET", SERVICE_URL_PATH, params={"notebookId": checked_id})
        data = envelope.get("data")
        # The answer's shape is not documented: accept an object with url/status or a bare URL.
        if data is None:
            return ServiceUrl(checked_id, None, None, envelope)
        if isinstance(data, str):
            return ServiceUrl(checked_id, models.extract_url(data), None, envelope)
        if isinstance(data, dict):
            url = data.get("url")
            status = data.get("status")
            return ServiceUrl(
                checked_id,
                models.extract_url(url) if isinstance(url, str) else None,
                str(status) if status is not None else None,
                envelope,
            )
        raise MalformedResponse(
            _("'data' is {type}, expected an object or a URL").format(type=_json_type(data)),
            200,
            _preview_json(data),
        )

    @in_language
    def list_notebooks(self, status: str | None = None, name: str | None = None) -> NotebookList:
        """Every notebook instance (all pages), optionally filtered by status or name."""
        params: dict[str, str] = {"size": str(PAGE_SIZE)}
        if status is not None:
            params["notebookStatus"] = _canonical_status(status)
        if name is not None:
            params["notebookName"] = name
        records = NotebookList()
        for page in range(1, MAX_PAGES + 1):
            envelope = self._call("GET", LIST_PATH, params={**params, "page": str(page)})
            data = envelope.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("records"), list):
                raise MalformedResponse(_("'data' has no 'records' list"), 200, _preview_json(data))
            batch = [r for r in data["records"] if isinstance(r, dict)]
            records.extend(batch)
            total = data.get("total")
            if not batch or (isinstance(total, int) and len(records) >= total):
                break
        return records

    # -- signing in -------------------------------------------------------------------------

    @classmethod
    def login(
        cls,
        user: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        region: str | None = None,
        login_url: str | None = None,
        timeout: float | None = None,
    ) -> ScnetClient:
        """Sign in with an access key pair and return a client for the region's token and address.

        Credentials not given come from ``SCNET_USER``, ``SCNET_ACCESS_KEY``,
        ``SCNET_SECRET_KEY`` or the config file; ``region`` (a name, part of one, or an id) is
        needed when the account has several. See :mod:`scnet_magic.login`.
        """
        from .login import sign_in

        signed = sign_in(
            user, access_key, secret_key, region=region, login_url=login_url, timeout=timeout
        )
        return cls(base_url=signed.base_url, token=signed.token, timeout=timeout)

    @in_language
    def renew_token(self, login_url: str | None = None) -> None:
        """Replace this client's token with a renewed one (``tokens/next``)."""
        from .login import renew_token

        self.__token = renew_token(self.__token, login_url=login_url, timeout=self.timeout)

    @in_language
    def token_state(self, login_url: str | None = None) -> TokenState:
        """Whether the platform still accepts this client's token (``tokens/state``)."""
        from .login import token_state

        return token_state(self.__token, login_url=login_url, timeout=self.timeout)

    @in_language
    def wait_until_ready(
        self,
        result_or_url: StartResult | str,
        timeout: float = readiness.DEFAULT_TIMEOUT,
        *,
        command: str | None = None,
        since: float | None = None,
        on_progress: Callable[[WaitProgress], None] | None = None,
    ) -> Readiness:
        """Wait until the service's external URL answers with something other than 502/503/504.

        Polls the URL only: the start request is never sent again. ``command`` (the one the
        service was started with) lets the error name its log file; ``since`` and
        ``on_progress`` are explained in :func:`scnet_magic.readiness.wait_until_ready`.
        Raises :class:`~scnet_magic.errors.NotReady` after ``timeout`` seconds.
        """
        seconds = models.validate_timeout(timeout)
        if isinstance(result_or_url, StartResult):
            url, port = result_or_url.url, result_or_url.port
            if url is None:
                raise ScnetError(
                    _("the platform gave no external URL to wait for"),
                    _("Ask for it with service_url(notebook_id) once the service is up."),
                )
        else:
            url, port = result_or_url, None
        return readiness.wait_until_ready(
            url,
            seconds,
            on_progress=on_progress,
            since=since,
            hint=readiness.not_ready_hint(command, port),
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _service_url_quietly(self, notebook_id: str) -> str | None:
        """The URL from endpoint 2, or None: the start itself already succeeded."""
        try:
            return self.service_url(notebook_id).url
        except ScnetError as exc:
            log.debug("service URL query after start failed: %s", exc)
            return None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request to the base URL, with the token, and return the envelope."""
        return self._request(
            method, self.base_url + path, headers={"token": self.__token}, params=params, body=body
        )


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """The body, read against a total deadline and a size limit.

    ``requests``' timeout applies to each socket read, so a server that trickles one byte at a
    time would never time out; the deadline bounds the whole answer. The size limit keeps a
    huge body out of memory.
    """
    chunks: list[bytes] = []
    size = 0
    raw = response.raw
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise urllib3.exceptions.ReadTimeoutError(None, None, "deadline")  # type: ignore[arg-type]
        _limit_socket_wait(response, remaining)
        chunk = raw.read1(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            # Quote the start only: joining megabytes would make one more copy of them.
            start = b""
            for piece in chunks:
                start += piece[: BODY_PREVIEW * 4 - len(start)]
            raise MalformedResponse(
                _("body larger than {size} MiB").format(size=MAX_BODY // (1024 * 1024)),
                response.status_code,
                _preview(start),
            )


def _limit_socket_wait(response: requests.Response, seconds: float) -> None:
    # Each read waits at most until the deadline, not a whole timeout past it.
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _envelope(response: requests.Response, raw: bytes) -> dict[str, Any]:
    status = response.status_code
    reason = response.reason or ""
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise HttpError(
            status,
            reason,
            _("redirected to {location}").format(location=location) if location else "",
            _(
                "The base URL may be out of date; use your region's address. Redirects are not "
                "followed, so nothing was started twice."
            ),
        )
    try:
        parsed = json.loads(raw)
    except ValueError:
        if status >= 400:
            raise HttpError(status, reason, _preview(raw), _status_hint(status)) from None
        raise MalformedResponse(
            _("not valid JSON"),
            status,
            _preview(raw),
            _("The base URL may not be the API address."),
        ) from None
    if not isinstance(parsed, dict) or "code" not in parsed:
        if status >= 400:
            raise HttpError(status, reason, _preview(raw), _status_hint(status))
        raise MalformedResponse(_("no 'code' field"), status, _preview(raw))
    code = parsed["code"]
    # Documented as a string; some answers carry a number.
    if isinstance(code, bool) or not isinstance(code, (str, int)):
        raise MalformedResponse(
            _("'code' is {type}, expected a string").format(type=_json_type(code)),
            status,
            _preview(raw),
        )
    code_text = str(code).strip()
    if code_text != "0":
        msg = parsed.get("msg")
        raise ApiError(code_text, str(msg) if msg is not None else "", status)
    if status >= 300:
        raise HttpError(status, reason, _preview(raw), _status_hint(status))
    return parsed


def _optional_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: object) -> str:
    """What a parsed JSON value is, in JSON's words (the server speaks JSON, not Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _("a boolean")
    if isinstance(value, (int, float)):
        return _("a number")
    if isinstance(value, str):
        return _("a string")
    return _("an array") if isinstance(value, list) else _("an object")


def _preview_json(value: object) -> str:
    return _preview(json.dumps(value, ensure_ascii=False).encode())


def _canonical_status(status: str) -> str:
    for known in NOTEBOOK_STATUSES:
        if status.strip().lower() == known.lower():
            return known
    raise InvalidInput(
        _("status must be one of {statuses}, got {value}").format(
            statuses=", ".join(NOTEBOOK_STATUSES), value=repr(status)
        ),
    )
