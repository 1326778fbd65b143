"""``scnet doctor``: read-only checks of what the settings point at, and the shape report.

Each check is one line (passed, failed, or for information) with a hint. Every answer the
checks see is kept as its *shape* (keys and JSON types, never a value), which the report
writes out for a bug report and compares with the shapes the client reads. Nothing is
started, stopped or renewed.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from . import config, endpoints, local, validation
from ._version import __version__
from .account import VALID_STATE, first_usable_url
from .config import Settings
from .errors import InvalidInput, ScnetError, one_line
from .i18n import N_, _
from .shapes import FAIL, INFO, PASS, Answer, Check, RecordingTransport, compare, shape
from .transport import HttpTransport, Request, Transport

CLOCK_TOLERANCE = 30.0  # seconds; signatures carry a timestamp the login host checks
TLS_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
SETTINGS = ("token", "base_url", "notebook_id", "timeout", "login_url", "ac_url", "language")


@dataclass
class Diagnosis:
    """What the doctor found: its lines, the answers seen, and the exit code they make."""

    checks: list[Check] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.state != FAIL for check in self.checks)

    def lines(self) -> Iterator[str]:
        for check in self.checks:
            yield check.line()

    def report(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "answers": [answer.to_dict() for answer in self.answers],
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
    checks = [
        *_sources(settings, explicit or {}, session or {}),
        *_config_file(),
        *_network_variables(),
    ]
    try:
        checks.append(_clock(inner, settings))
        checks += _platform(recorder, settings, notebook_id)
    finally:
        if transport is None:
            inner.close()
    checks += compare(recorder.answers)
    checks += _guards()
    # Whatever a server echoes goes nowhere with the token in it (a refusal quoting it).
    hide = _Redact(settings.token)
    return Diagnosis(
        [Check(c.state, hide(c.text), hide(c.hint)) for c in checks],
        [Answer(hide(a.endpoint), a.status, a.code, hide.shape(a.data)) for a in recorder.answers],
    )


class _Redact:
    """Takes ``token`` and each of its dot-separated parts out of a text or a shape."""

    def __init__(self, token: str | None) -> None:
        parts = [token, *token.split(".")] if token else []
        self._secrets = sorted({p for p in parts if len(p) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "…")
        return text

    def shape(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self(key): self.shape(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.shape(item) for item in value]
        return value


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
        setting = config.ENV_VARS[name]
        line = (
            _("{setting} not set: the default applies").format(setting=setting)
            if source is None
            else _("{setting} from {source}").format(setting=setting, source=source)
        )
        checks.append(Check(INFO, line))
    return checks


def _config_file() -> list[Check]:
    path = config.config_path()
    if not path.exists():
        return [Check(INFO, _("no config file at {path}").format(path=path))]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [
            Check(
                FAIL,
                _("config file {path} can be read by other users (mode {mode:o})").format(
                    path=path, mode=mode
                ),
                _("Run: chmod 600 {path}").format(path=path),
            )
        ]
    return [
        Check(PASS, _("config file {path} is private (mode {mode:o})").format(path=path, mode=mode))
    ]


def _network_variables() -> list[Check]:
    checks = []
    for name in TLS_VARIABLES:
        value = os.environ.get(name)
        if not value:
            continue
        if Path(value).exists():
            checks.append(Check(INFO, _("{name} is set to an existing path").format(name=name)))
        else:
            checks.append(
                Check(
                    FAIL,
                    _("{name} names a path that does not exist").format(name=name),
                    _("Fix or unset {name}: HTTPS calls fail without the CA file.").format(
                        name=name
                    ),
                )
            )
    # A proxy's address may hold a password: only its name is shown.
    names = [n for n in PROXY_VARIABLES for v in (n, n.lower()) if os.environ.get(v)]
    if names:
        checks.append(
            Check(
                INFO,
                _("proxy variables set: {names}").format(names=", ".join(dict.fromkeys(names))),
            )
        )
    else:
        checks.append(Check(INFO, _("no proxy variable set")))
    return checks


def _clock(transport: Transport, settings: Settings) -> Check:
    """This machine's clock against the login host's ``Date`` header."""
    if not isinstance(transport, HttpTransport):
        return Check(INFO, _("clock not compared (no network transport)"))
    before = time.time()
    status, reason, date = transport.probe_header(
        settings.login_url + "/", settings.timeout, "Date"
    )
    now = (before + time.time()) / 2
    if status is None:
        return Check(
            FAIL,
            _("the login host {url} did not answer: {reason}").format(
                url=settings.login_url, reason=reason
            ),
            _("Check SCNET_LOGIN_URL and the network."),
        )
    try:
        skew = parsedate_to_datetime(date or "").timestamp() - now
    except (TypeError, ValueError):
        return Check(INFO, _("the login host's answer has no usable Date header"))
    if abs(skew) > CLOCK_TOLERANCE:
        return Check(
            FAIL,
            _("this machine's clock is {seconds} s off the login host's").format(
                seconds=f"{skew:+.0f}"
            ),
            _("Set the clock right (NTP): signed sign-in requests carry a timestamp."),
        )
    return Check(
        PASS,
        _("clock agrees with the login host's (within {seconds} s)").format(
            seconds=f"{CLOCK_TOLERANCE:g}"
        ),
    )


def _failed(what: str, exc: ScnetError) -> Check:
    return Check(FAIL, _("{what}: {problem}").format(what=what, problem=exc.message), exc.hint)


def _platform(transport: Transport, settings: Settings, notebook_id: str | None) -> list[Check]:
    token = settings.token
    if token is None:
        return [
            Check(
                FAIL,
                _("no token is set"),
                _("Sign in with scnet login, or set SCNET_TOKEN."),
            )
        ]
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
        answered = _("{what}: answered ({total} instances)").format(what=what, total=total)
    else:
        answered = _("{what}: answered").format(what=what)
    checks.append(Check(PASS, answered))
    if notebook_id is not None:
        checks += _instance(transport, address, token, notebook_id)
    return checks


def _token_state(transport: Transport, ac_url: str, token: str) -> Check:
    what = _("token state")
    try:
        envelope = transport.call(Request.to(endpoints.STATE, ac_url, token))
    except ScnetError as exc:
        return _failed(what, exc)
    data = envelope.get("data")
    if isinstance(data, str) and data.strip().lower() == VALID_STATE:
        return Check(PASS, _("token state: valid"))
    if isinstance(data, dict):
        said = {
            key: data[key]
            for key in data
            if "expire" in key.lower() or key.lower() in ("region", "clustername")
        }
        if said:
            return Check(
                INFO,
                _("token state: {fields}").format(
                    fields=one_line(json.dumps(said, ensure_ascii=False))
                ),
            )
    return Check(
        FAIL,
        _("token state: the platform did not say the token is valid"),
        _("Sign in again with scnet login."),
    )


def _region_address(
    transport: Transport, settings: Settings, token: str
) -> tuple[str, list[Check]]:
    """The AI address region discovery gives (else the base URL setting), and what was found."""
    what = _("region discovery at {url}").format(url=settings.ac_url)
    try:
        envelope = transport.call(Request.to(endpoints.CENTER, settings.ac_url, token))
    except ScnetError as exc:
        return settings.base_url, [_failed(what, exc)]
    data = envelope.get("data")
    entries = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    for entry in entries:
        url = first_usable_url(entry.get("aiUrls")) if isinstance(entry, dict) else None
        if url is None:
            continue
        try:
            address = validation.validate_base_url(url.strip().rstrip("/").removesuffix("/ai"))
        except InvalidInput as exc:
            problem = _("the region's AI address is not usable ({problem})").format(
                problem=exc.message
            )
            return settings.base_url, [
                Check(FAIL, _("{what}: {problem}").format(what=what, problem=problem))
            ]
        name = one_line(str(entry.get("name") or entry.get("clusterName") or "?"))
        found = Check(
            PASS,
            _("{what}: region {region}, AI address {url}").format(
                what=what, region=name, url=address
            ),
        )
        if address != settings.base_url.rstrip("/"):
            return address, [
                found,
                Check(
                    FAIL,
                    _("the base URL setting {setting} is not the region's AI address").format(
                        setting=settings.base_url
                    ),
                    _("Sign in again with scnet login, or set SCNET_BASE_URL to {url}.").format(
                        url=address
                    ),
                ),
            ]
        return address, [found]
    return settings.base_url, [
        Check(
            FAIL,
            _("{what}: no usable AI address (aiUrls)").format(what=what),
            _("Choose another region."),
        )
    ]


def _instance(transport: Transport, address: str, token: str, notebook_id: str) -> list[Check]:
    """The instance's detail and its custom service's URL."""
    checks = []
    calls = (
        (endpoints.DETAIL, _("instance {id}"), _status_of),
        (endpoints.SERVICE_URL, _("custom service URL of {id}"), _url_of),
    )
    for endpoint, title, summary in calls:
        what = title.format(id=notebook_id)
        try:
            envelope = transport.call(
                Request.to(endpoint, address, token, params={"notebookId": notebook_id})
            )
        except ScnetError as exc:
            checks.append(_failed(what, exc))
            continue
        found = summary(envelope.get("data"))
        checks.append(Check(PASS, _("{what}: {found}").format(what=what, found=found)))
    return checks


def _status_of(data: object) -> str:
    status = data.get("notebookStatus") if isinstance(data, dict) else None
    return _("status {status}").format(status=one_line(str(status)))


def _url_of(data: object) -> str:
    url = data.get("url") if isinstance(data, dict) else data
    return one_line(str(url)) if url else _("none yet")


def _guards() -> list[Check]:
    from . import guard  # its records only: the guard's server is not imported

    records = guard.list_guards()
    if not records:
        return [Check(INFO, _("no guard runs here"))]
    checks = []
    for record in records:
        text = _("guard on port {port} for 127.0.0.1:{upstream}").format(
            port=record.port, upstream=record.upstream_port
        )
        if local.listening(record.upstream_port, timeout=2.0):
            checks.append(Check(PASS, _("{guard}: the service listens").format(guard=text)))
        else:
            checks.append(
                Check(
                    FAIL,
                    _("{guard}: nothing listens on the service's port").format(guard=text),
                    _(
                        "Start the service again, or stop the guard with scnet guard --stop {port}."
                    ).format(port=record.port),
                )
            )
    return checks


__all__ = ["Answer", "Check", "Diagnosis", "compare", "diagnose", "report_path", "shape"]
