"""The shapes of the platform's answers (keys and JSON types, never a value) that the doctor
keeps, and how each compares with what the client reads, as :class:`Check` lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import endpoints
from .endpoints import Endpoint
from .i18n import N_, _
from .transport import Request, Response, Transport

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "status": self.status,
            "code": self.code,
            "data": self.data,
        }


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
        key, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        while isinstance(node, list) and node:
            node = node[0]
        if not isinstance(node, dict) or key not in node:
            return "missing"
        node = node[key]
        if is_list:
            if not isinstance(node, list):
                return _name(node)
            if not node:
                return "empty"
            node = node[0]
    return _name(node)


def _name(node: Any) -> str:
    if isinstance(node, dict):
        return "object"
    if isinstance(node, list):
        return "array"
    return str(node)


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
        for expected in EXPECTED:
            if str(expected.endpoint) != answer.endpoint:
                continue
            checks.append(_compared(answer, expected))
    return checks


def _compared(answer: Answer, expected: Expected) -> Check:
    field_name = "data" + ("." + expected.path if expected.path else "")
    found = _type_at(answer.data, expected.path)
    wanted = _(" or ").join(expected.types)
    where = f"{answer.endpoint}: `{field_name}`"
    if found == "empty":
        return Check(INFO, _("{where}: an empty list, nothing to compare").format(where=where))
    if found == "missing" and expected.when_missing is not None:
        return Check(
            PASS,
            _("{where} missing, {reading}").format(where=where, reading=_(expected.when_missing)),
        )
    if found in expected.types:
        return Check(
            PASS,
            _("{where}: {found}, expected {wanted}").format(
                where=where, found=found, wanted=wanted
            ),
        )
    return Check(
        FAIL,
        _("{where}: {found}, expected {wanted}").format(where=where, found=found, wanted=wanted),
        _(
            "The platform answers a shape the client does not read: run scnet doctor --report "
            "and attach the file to a bug report."
        ),
    )


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
    except ValueError:
        return Answer(name, response.status, None, "not JSON")
    if not isinstance(envelope, dict):
        return Answer(name, response.status, None, shape(envelope))
    code = envelope.get("code")
    # A code is a number, as a string or not; anything else is kept as its type only.
    text = str(code).strip() if isinstance(code, (str, int)) and not isinstance(code, bool) else ""
    code_text: str | None = text
    if not re.fullmatch(r"-?\d{1,12}", text):
        code_text = None if code is None else f"<{shape(code)}>"
    return Answer(name, response.status, code_text, shape(envelope.get("data")))
