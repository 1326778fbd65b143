"""``scnet doctor``: read-only checks of what the settings point at, one line each with a
hint, and the report of the shapes of the answers seen (keys and JSON types, never a value),
compared with what the client reads. Nothing is started, stopped or renewed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import config, endpoints, local
from ._version import __version__
from .account import VALID_STATE, api_base, first_ai_url, region_entries
from .config import Settings
from .endpoints import Endpoint
from .errors import InvalidInput, MalformedResponse, ScnetError, one_line
from .i18n import N_, _
from .server_text import ServerText
from .transport import HttpTransport, Request, Response, Transport

PASS, FAIL, INFO = "pass", "fail", "info"
MARKS = {PASS: "✓", FAIL: "✗", INFO: "–"}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's output: its state (``PASS``, ``FAIL``, ``INFO``), what was
    checked and found, and what to do about it."""

    state: str
    text: str
    hint: str = ""

    def line(self) -> str:
        head = f"{MARKS[self.state]} {self.text}"
        return f"{head}\n    {self.hint}" if self.hint else head


@dataclass(frozen=True)
class Answer:
    """An answer as the report keeps it: where it came from and its shape, never a value."""

    endpoint: str
    status: int
    code: str | None
    data: Any  # the shape of ``data`` (see :func:`shape`)


def shape(value: object) -> Any:
    """The shape of a JSON value: objects by their keys, lists by their first element, and
    every other value by its JSON type's name."""
    if isinstance(value, dict):
        return {str(key): shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _type_at(data_shape: Any, path: str) -> str:
    """The JSON type at ``path`` (``records[].id``) of a shape, or "missing". A list met where
    a key is wanted is read by its first element, as the client reads region discovery."""
    node = data_shape
    for part in path.split(".") if path else ():
        while isinstance(node, list) and node:
            node = node[0]
        if not isinstance(node, dict) or part.removesuffix("[]") not in node:
            return "missing"
        node = node[part.removesuffix("[]")]
        if part.endswith("[]") and isinstance(node, list):
            if not node:
                return "empty"
            node = node[0]
        elif part.endswith("[]"):
            break  # not a list: its own type is the answer
    return "object" if isinstance(node, dict) else "array" if isinstance(node, list) else str(node)


@dataclass(frozen=True)
class Expected:
    """What the client reads at ``path`` of an endpoint's ``data``: the types it accepts, and
    how it reads the field's absence (None: absence is a failure)."""

    endpoint: Endpoint
    path: str
    types: tuple[str, ...]
    when_missing: str | None = None


_OPTIONAL_PORT = N_("read as no custom service configured")
EXPECTED = (
    Expected(endpoints.STATE, "", ("string",)),
    Expected(endpoints.CENTER, "", ("object", "array")),
    Expected(endpoints.CENTER, "aiUrls", ("array",)),
    Expected(endpoints.CENTER, "aiUrls[].url", ("string",)),
    Expected(endpoints.CENTER, "aiUrls[].enable", ("boolean", "string"), N_("read as enabled")),
    Expected(endpoints.LIST, "", ("object",)),
    Expected(endpoints.LIST, "total", ("number",), N_("pages are read until one is empty")),
    Expected(endpoints.LIST, "records", ("array",)),
    Expected(endpoints.LIST, "records[].id", ("string", "number")),
    Expected(endpoints.LIST, "records[].notebookName", ("string",)),
    Expected(endpoints.LIST, "records[].notebookStatus", ("string",)),
    Expected(
        endpoints.LIST, "records[].customsizePort", ("number", "string", "null"), _OPTIONAL_PORT
    ),
    Expected(endpoints.DETAIL, "", ("object",)),
    Expected(endpoints.DETAIL, "notebookStatus", ("string",)),
    Expected(endpoints.DETAIL, "customsizePort", ("number", "string", "null"), _OPTIONAL_PORT),
    Expected(endpoints.SERVICE_URL, "", ("object", "string")),
    Expected(endpoints.SERVICE_URL, "url", ("string", "null"), N_("read as no address yet")),
    Expected(endpoints.SERVICE_URL, "status", ("string",), N_("read as unknown")),
)
# The endpoints the doctor names in its report (whatever else it sees is "?").
_KNOWN = {*(expected.endpoint for expected in EXPECTED), endpoints.TOKENS, endpoints.RENEW}


def compare(answers: list[Answer]) -> list[Check]:
    """How each answer's shape compares with what the client reads (the first answer of each
    endpoint that succeeded)."""
    checks: list[Check] = []
    seen: set[str] = set()
    for answer in answers:
        if answer.code != "0" or answer.endpoint in seen:
            continue
        seen.add(answer.endpoint)
        checks += [_compared(answer, e) for e in EXPECTED if str(e.endpoint) == answer.endpoint]
    return checks


def _compared(answer: Answer, expected: Expected) -> Check:
    field_name = "data" + ("." + expected.path if expected.path else "")
    where = f"{answer.endpoint}: `{field_name}`"
    found = _type_at(answer.data, expected.path)
    if found == "empty":
        return check(INFO, N_("{where}: an empty list, nothing to compare"), where=where)
    if found == "missing" and expected.when_missing is not None:
        reading = _(expected.when_missing)
        return check(PASS, N_("{where} missing, {reading}"), where=where, reading=reading)
    text = N_("{where}: {found}, expected {wanted}")
    values = {"where": where, "found": found, "wanted": _(" or ").join(expected.types)}
    if found in expected.types:
        return check(PASS, text, **values)
    hint = N_(
        "The platform answers a shape the client does not read: run scnet doctor --report "
        "and attach the file to a bug report."
    )
    return check(FAIL, text, hint, **values)


class RecordingTransport(Transport):
    """Sends through ``inner`` and keeps the shape of every answer that came."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.answers: list[Answer] = []

    def close(self) -> None:
        self.inner.close()

    def send(self, request: Request) -> Response:
        response = self.inner.send(request)
        self.answers.append(_seen(request, response))
        return response


def _seen(request: Request, response: Response) -> Answer:
    path = urlsplit(request.url).path
    name = next(
        (str(e) for e in _KNOWN if e.method == request.method and path.endswith(e.path)),
        f"{request.method} ?",
    )
    try:
        envelope = json.loads(response.body)
    except (ValueError, RecursionError):  # (too deep: the client's own check names it)
        return Answer(name, response.status, None, "not JSON")
    if not isinstance(envelope, dict):
        return Answer(name, response.status, None, shape(envelope))
    code = envelope.get("code")
    # A code is a number, as a string or not; anything else is kept as its type only.
    text = str(code).strip() if isinstance(code, (str, int)) and not isinstance(code, bool) else ""
    if not re.fullmatch(r"-?\d{1,12}", text):
        text = "" if code is None else f"<{shape(code)}>"
    return Answer(name, response.status, text or None, shape(envelope.get("data")))


CLOCK_TOLERANCE = 30.0  # seconds; signatures carry a timestamp the login host checks
TLS_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
SETTINGS = ("token", "base_url", "notebook_id", "timeout", "login_url", "ac_url", "language")


@dataclass
class Diagnosis:
    """What the doctor found: its lines, the answers seen, and the exit code they make."""

    checks: list[Check]
    answers: list[Answer]

    @property
    def passed(self) -> bool:
        return all(check.state != FAIL for check in self.checks)

    def lines(self) -> Iterator[str]:
        return (check.line() for check in self.checks)

    def report(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "answers": [dataclasses.asdict(answer) for answer in self.answers],
        }

    def write_report(self, path: Path) -> None:
        text = json.dumps(self.report(), indent=2, sort_keys=True) + "\n"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ScnetError(
                N_("cannot write the report to {path}: {reason}"), path=path, reason=exc.strerror
            ) from None


def report_path(text: str) -> Path:
    """The report's file, checked before any call: its folder must exist."""
    path = Path(text).expanduser()
    if not text.strip() or path.is_dir() or not path.parent.is_dir():
        raise InvalidInput(
            N_("--report: {path} is not a file in an existing folder"),
            N_("Give a file name, for example --report scnet-doctor.json."),
            path=text,
        )
    return path


def diagnose(
    settings: Settings,
    *,
    explicit: Mapping[str, Any] | None = None,
    session: Mapping[str, Any] | None = None,
    notebook_id: str | None = None,
    transport: Transport | None = None,
) -> Diagnosis:
    """Run every check against what ``settings`` point at (read-only)."""
    # No retry: the doctor reports what one call gets. A transport handed in is the caller's.
    inner = transport or HttpTransport(settings.timeout, retries=0, purpose="doctor")
    recorder = RecordingTransport(inner)
    checks = [*_sources(settings, explicit or {}, session or {}), _config_file()]
    checks += _network_variables()
    try:
        checks.append(_clock(inner, settings))
        checks += _platform(recorder, settings, notebook_id)
    finally:
        if transport is None:
            inner.close()
    checks += compare(recorder.answers)
    checks += _guards()
    # Whatever a server echoes goes nowhere with the token in it (a refusal quoting it).
    hide = ServerText({settings.token: "token"} if settings.token else {}).hide
    return Diagnosis(
        [Check(c.state, hide(c.text), hide(c.hint)) for c in checks],
        [Answer(hide(a.endpoint), a.status, a.code, _keys(hide, a.data)) for a in recorder.answers],
    )


def _keys(hide: Callable[[str], str], value: Any) -> Any:
    """A shape with ``hide`` applied to its keys (its other strings are JSON types' names)."""
    if isinstance(value, dict):
        return {hide(key): _keys(hide, item) for key, item in value.items()}
    return [_keys(hide, item) for item in value] if isinstance(value, list) else value


def check(state: str, text: str, hint: str = "", **values: object) -> Check:
    """A check from message ids and the values they are filled with."""
    return Check(state, _(text).format(**values), _(hint).format(**values) if hint else "")


def _sources(
    settings: Settings, explicit: Mapping[str, Any], session: Mapping[str, Any]
) -> list[Check]:
    """Where each setting came from (the resolution's own order, without reading twice what
    the settings already say: the token's source names the magic that set it)."""
    lookup = config._Lookup(explicit, session)
    checks = []
    for name in SETTINGS:
        found = lookup.find(name)
        source = found[1] if found is not None else None
        if name == "token" and settings.token_source is not None:
            source = settings.token_source
        text = (
            N_("{setting} not set: the default applies")
            if source is None
            else N_("{setting} from {source}")
        )
        checks.append(check(INFO, text, setting=config.ENV_VARS[name], source=source))
    return checks


def _config_file() -> Check:
    path = config.config_path()
    if not path.exists():
        return check(INFO, N_("no config file at {path}"), path=path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        text = N_("config file {path} can be read by other users (mode {mode:o})")
        return check(FAIL, text, N_("Run: chmod 600 {path}"), path=path, mode=mode)
    return check(PASS, N_("config file {path} is private (mode {mode:o})"), path=path, mode=mode)


def _network_variables() -> list[Check]:
    checks = []
    for name in TLS_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).exists():
            checks.append(check(INFO, N_("{name} is set to an existing path"), name=name))
        elif value:
            text = N_("{name} names a path that does not exist")
            hint = N_("Fix or unset {name}: HTTPS calls fail without the CA file.")
            checks.append(check(FAIL, text, hint, name=name))
    # A proxy's address may hold a password: only its name is shown.
    names = [n for n in PROXY_VARIABLES for v in (n, n.lower()) if os.environ.get(v)]
    if names:
        shown = ", ".join(dict.fromkeys(names))
        checks.append(check(INFO, N_("proxy variables set: {names}"), names=shown))
    else:
        checks.append(check(INFO, N_("no proxy variable set")))
    return checks


def _clock(transport: Transport, settings: Settings) -> Check:
    """This machine's clock against the login host's ``Date`` header."""
    if not isinstance(transport, HttpTransport):
        return check(INFO, N_("clock not compared (no network transport)"))
    before = time.time()
    url = settings.login_url
    status, reason, date = transport.probe(url + "/", settings.timeout, "Date")
    now = (before + time.time()) / 2
    if status is None:
        text = N_("the login host {url} did not answer: {reason}")
        return check(
            FAIL, text, N_("Check SCNET_LOGIN_URL and the network."), url=url, reason=reason
        )
    try:
        skew = parsedate_to_datetime(date or "").timestamp() - now
    except (TypeError, ValueError):
        return check(INFO, N_("the login host's answer has no usable Date header"))
    if abs(skew) > CLOCK_TOLERANCE:
        text = N_("this machine's clock is {seconds} s off the login host's")
        hint = N_("Set the clock right (NTP): signed sign-in requests carry a timestamp.")
        return check(FAIL, text, hint, seconds=f"{skew:+.0f}")
    text = N_("clock agrees with the login host's (within {seconds} s)")
    return check(PASS, text, seconds=f"{CLOCK_TOLERANCE:g}")


def _failed(what: str, exc: ScnetError) -> Check:
    return Check(FAIL, _("{what}: {problem}").format(what=what, problem=exc.message), exc.hint)


def _platform(transport: Transport, settings: Settings, notebook_id: str | None) -> list[Check]:
    token = settings.token
    if token is None:
        hint = N_("Sign in with scnet login, or set SCNET_TOKEN.")
        return [check(FAIL, N_("no token is set"), hint)]
    checks = [_token_state(transport, settings.ac_url, token)]
    address, found = _region_address(transport, settings, token)
    checks += found
    what = _("notebook list at {url}").format(url=address)
    try:
        envelope = transport.call(
            Request.to(endpoints.LIST, address, token, params={"page": "1", "size": "1"})
        )
    except ScnetError as exc:
        return [*checks, _failed(what, exc)]
    data = envelope.get("data")
    total = data.get("total") if isinstance(data, dict) else None
    if isinstance(total, int) and not isinstance(total, bool):
        checks.append(
            check(PASS, N_("{what}: answered ({total} instances)"), what=what, total=total)
        )
    else:
        checks.append(check(PASS, N_("{what}: answered"), what=what))
    if notebook_id is not None:
        checks += _instance(transport, address, token, notebook_id)
    return checks


def _token_state(transport: Transport, ac_url: str, token: str) -> Check:
    try:
        envelope = transport.call(Request.to(endpoints.STATE, ac_url, token))
    except ScnetError as exc:
        return _failed(_("token state"), exc)
    data = envelope.get("data")
    if isinstance(data, str) and data.strip().lower() == VALID_STATE:
        return check(PASS, N_("token state: valid"))
    if isinstance(data, dict):
        said = {
            key: data[key]
            for key in data
            if "expire" in key.lower() or key.lower() in ("region", "clustername")
        }
        if said:
            fields = one_line(json.dumps(said, ensure_ascii=False))
            return check(INFO, N_("token state: {fields}"), fields=fields)
    text = N_("token state: the platform did not say the token is valid")
    return check(FAIL, text, N_("Sign in again with scnet login."))


def _region_address(
    transport: Transport, settings: Settings, token: str
) -> tuple[str, list[Check]]:
    """The AI address region discovery gives (else the base URL setting), and what was found."""
    what = _("region discovery at {url}").format(url=settings.ac_url)
    try:
        envelope = transport.call(Request.to(endpoints.CENTER, settings.ac_url, token))
    except ScnetError as exc:
        return settings.base_url, [_failed(what, exc)]
    found = first_ai_url(region_entries(envelope.get("data")) or [])
    if found is None:
        text = N_("{what}: no usable AI address (aiUrls)")
        return settings.base_url, [check(FAIL, text, N_("Choose another region."), what=what)]
    entry, url = found
    try:
        address = api_base(url)
    except MalformedResponse as exc:
        failed = check(FAIL, N_("{what}: {problem}"), what=what, problem=exc.problem)
        return settings.base_url, [failed]
    name = one_line(str(entry.get("name") or entry.get("clusterName") or "?"))
    text = N_("{what}: region {region}, AI address {url}")
    passed = check(PASS, text, what=what, region=name, url=address)
    if address == settings.base_url.rstrip("/"):
        return address, [passed]
    text = N_("the base URL setting {setting} is not the region's AI address")
    hint = N_("Sign in again with scnet login, or set SCNET_BASE_URL to {url}.")
    return address, [passed, check(FAIL, text, hint, setting=settings.base_url, url=address)]


def _instance(transport: Transport, address: str, token: str, notebook_id: str) -> list[Check]:
    """The instance's detail and its custom service's URL."""
    checks = []
    titles = {
        endpoints.DETAIL: _("instance {id}"),
        endpoints.SERVICE_URL: _("custom service URL of {id}"),
    }
    for endpoint, title in titles.items():
        what = title.format(id=notebook_id)
        try:
            envelope = transport.call(
                Request.to(endpoint, address, token, params={"notebookId": notebook_id})
            )
        except ScnetError as exc:
            checks.append(_failed(what, exc))
            continue
        data = envelope.get("data")
        if endpoint is endpoints.DETAIL:
            status = data.get("notebookStatus") if isinstance(data, dict) else None
            found = _("status {status}").format(status=one_line(str(status)))
        else:
            url = data.get("url") if isinstance(data, dict) else data
            found = one_line(str(url)) if url else _("none yet")
        checks.append(check(PASS, N_("{what}: {found}"), what=what, found=found))
    return checks


def _guards() -> list[Check]:
    from . import guard  # its records only: the guard's server is not imported

    records = guard.list_guards()
    if not records:
        return [check(INFO, N_("no guard runs here"))]
    checks = []
    for record in records:
        guard_text = _("guard on port {port} for 127.0.0.1:{upstream}").format(
            port=record.port, upstream=record.upstream_port
        )
        if local.listening(record.upstream_port, timeout=2.0):
            checks.append(check(PASS, N_("{guard}: the service listens"), guard=guard_text))
        else:
            text = N_("{guard}: nothing listens on the service's port")
            hint = N_("Start the service again, or stop the guard with scnet guard --stop {port}.")
            checks.append(check(FAIL, text, hint, guard=guard_text, port=record.port))
    return checks
