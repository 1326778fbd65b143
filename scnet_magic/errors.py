"""The exception hierarchy and the platform's error-code table.

Every failure the package reports is a :class:`ScnetError`; each subclass carries the fields a
caller needs (the API code, the HTTP status, the start of the body) and a ``hint`` that says what
to do next. Messages are one line and never contain the token.
"""

from __future__ import annotations

from typing import NamedTuple

from .i18n import N_, _, current


class CodeInfo(NamedTuple):
    """What one platform error code means (as documented) and what to do about it.

    ``hint`` is the English msgid; :meth:`shown_meaning` and :meth:`shown_hint` give both in
    the current language (the Chinese meanings are the platform's documented ones).
    """

    meaning_zh: str
    meaning: str
    hint: str

    def shown_meaning(self) -> str:
        return self.meaning_zh if current() == "zh" else self.meaning

    def shown_hint(self) -> str:
        return _(self.hint)


ERROR_CODES: dict[str, CodeInfo] = {
    "10001": CodeInfo("内部错误", "internal error", N_("The platform failed; try again later.")),
    "10003": CodeInfo(
        "参数不全",
        "required parameters missing",
        N_("Check the notebook id and the port."),
    ),
    "10004": CodeInfo(
        "参数无效",
        "invalid parameter",
        N_("Check the notebook id (it must be one of your instances) and the port."),
    ),
    "10007": CodeInfo(
        "用户已被冻结",
        "user account frozen",
        N_("The account is frozen; contact SCNet support."),
    ),
    "10008": CodeInfo(
        "权限不足",
        "insufficient permission",
        N_("The token lacks permission or has expired; get a new token and set it again."),
    ),
    "10009": CodeInfo(
        "没有权限访问接口",
        "no permission to call this API",
        N_(
            "The token's user cannot call this API, or the base URL belongs to another region; "
            "check the token and the base URL."
        ),
    ),
    "10010": CodeInfo(
        "文件校验失败", "file check failed", N_("The request was rejected as invalid.")
    ),
    "10011": CodeInfo("文件过大", "file too large", N_("The request is too large; shorten it.")),
    "10012": CodeInfo(
        "连接中断",
        "connection interrupted",
        N_("The connection broke; check the instance before starting again."),
    ),
    "716865": CodeInfo(
        "创建任务错误",
        "task creation error",
        N_("The platform could not run the command; check that the instance is running."),
    ),
}

UNKNOWN_CODE_HINT = N_("See the message from the platform; check that the instance is running.")
_LIST_SEPARATOR = N_(", ")  # between the details of an API error
SERVER_TEXT_LIMIT = 200  # characters of server-sent text quoted in a message


def one_line(text: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Server-sent text as one short line: whitespace runs become one space, the rest is cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "…"


def describe_code(code: str) -> CodeInfo | None:
    """The documented meaning of an error code, or None for a code the table does not know."""
    return ERROR_CODES.get(code)


class ScnetError(Exception):
    """Root of every error raised by scnet-magic."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def user_message(self) -> str:
        """The message and the hint, as shown to a person."""
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class InvalidInput(ScnetError, ValueError):
    """An argument is invalid (id, port, command, token, base URL, timeout); nothing was sent."""


class ConfigError(ScnetError):
    """A required setting (for example the token) is missing or unreadable."""


class LoginError(ScnetError):
    """Signing in gave no usable region (suspended account, unknown region, no enabled address)."""


class ApiError(ScnetError):
    """The platform answered with an envelope whose ``code`` is not "0"."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        self.code = code
        self.msg = msg
        self.status = status
        info = describe_code(code)
        # The status matters when the envelope came with an HTTP error (401, 500...).
        details = [info.shown_meaning()] if info else []
        if status != 200:
            details.append(f"HTTP {status}")
        # The platform's msg is shown as it came, whatever the language.
        joined = _(_LIST_SEPARATOR).join(details)
        shown_details = _(" ({details})").format(details=joined) if details else ""
        shown_msg = one_line(msg) or _("(no message)")
        super().__init__(
            _("SCNet API error {code}{details}: {msg}").format(
                code=one_line(code, 40), details=shown_details, msg=shown_msg
            ),
            info.shown_hint() if info else _(UNKNOWN_CODE_HINT),
        )
        self.meaning = info.meaning if info else None


class HttpError(ScnetError):
    """The server answered with an HTTP status that is not a platform answer (3xx, 4xx, 5xx)."""

    def __init__(self, status: int, reason: str, body: str, hint: str = "") -> None:
        self.status = status
        self.reason = reason
        self.body = body
        shown = f": {body}" if body else ""
        super().__init__(f"HTTP {status} {reason}".rstrip() + shown, hint)


class MalformedResponse(ScnetError):
    """The server's answer is not the documented JSON envelope (not JSON, or the wrong shape)."""

    def __init__(self, problem: str, status: int, body: str, hint: str = "") -> None:
        self.problem = problem
        self.status = status
        self.body = body
        shown = f": {body}" if body else ""
        super().__init__(
            _("Unexpected answer (HTTP {status}, {problem}){body}").format(
                status=status, problem=problem, body=shown
            ),
            hint,
        )


class TransportError(ScnetError, ConnectionError):
    """The request did not complete: connection refused or reset, TLS failure, bad URL."""


class RequestTimeout(TransportError, TimeoutError):
    """The server did not answer within the timeout."""


class NotReady(ScnetError, TimeoutError):
    """The service's external URL did not answer (other than with a gateway error) in time."""

    def __init__(self, url: str, timeout: float, last: str, hint: str = "") -> None:
        self.url = url
        self.timeout = timeout
        self.last = last
        super().__init__(
            _("Service not ready after {timeout} s: {url} (last check: {last})").format(
                timeout=f"{timeout:g}", url=url, last=last
            ),
            hint,
        )
