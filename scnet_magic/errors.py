"""The exception hierarchy and the platform's error-code table. Every failure is a
:class:`ScnetError` with a ``hint`` saying what to do next; its message (one line, never the
token) is a message id and values, written when shown, in the language in force then."""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple, TypeVar

from . import i18n
from .i18n import N_, Message, _, as_message
from .server_text import strip_controls


class CodeInfo(NamedTuple):
    """What one platform error code means (as documented: the Chinese meanings are the
    translations) and what to do about it."""

    meaning: str
    hint: str


ERROR_CODES: dict[str, CodeInfo] = {
    "10001": CodeInfo(N_("internal error"), N_("The platform failed; try again later.")),
    "10003": CodeInfo(
        N_("required parameters missing"), N_("Check the notebook id and, for a start, the port.")
    ),
    "10004": CodeInfo(
        N_("invalid parameter"),
        N_("Check the notebook id (it must be one of your instances) and, for a start, the port."),
    ),
    "10007": CodeInfo(
        N_("user account frozen"), N_("The account is frozen; contact SCNet support.")
    ),
    "10008": CodeInfo(
        N_("insufficient permission"),
        N_("The token lacks permission or has expired; get a new token and set it again."),
    ),
    "10009": CodeInfo(
        N_("no permission to call this API"),
        N_(
            "The token's user cannot call this API, or the base URL belongs to another region; "
            "check the token and the base URL."
        ),
    ),
    "10010": CodeInfo(N_("file check failed"), N_("The request was rejected as invalid.")),
    "10011": CodeInfo(N_("file too large"), N_("The request is too large; shorten it.")),
    "10012": CodeInfo(
        N_("connection interrupted"),
        N_("The connection broke; check the instance before starting again."),
    ),
    "716865": CodeInfo(
        N_("task creation error"),
        N_("The platform could not run the command; check that the instance is running."),
    ),
}

UNKNOWN_CODE_HINT = N_("See the message from the platform; check that the instance is running.")
_LIST_SEPARATOR = N_(", ")  # between the details of an API error
SERVER_TEXT_LIMIT = 200  # characters of server-sent text quoted in a message
# Sentence ends after which the hint follows without another stop.
# ("…" is no stop: it ends a value cut short, and the sentence goes on.)
_FULL_WIDTH_STOPS = ("。", "！", "？")
_STOPS = (".", "!", "?", *_FULL_WIDTH_STOPS)
_E = TypeVar("_E", bound="ScnetError")


def one_line(text: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Server-sent text as one short line: whitespace runs become one space, terminal controls
    go, the rest is cut."""
    line = " ".join(strip_controls(text).split())
    return line if len(line) <= limit else line[:limit] + "…"


def _ended(text: str) -> str:
    """``text`` ending in a stop: its own, else the language's ("." or a full-width "。") in
    place of a trailing colon, semicolon or comma (a value may leave a Latin one in Chinese)."""
    if text.endswith(_STOPS):
        return text
    if i18n.current() == "zh":
        return f"{text.rstrip(':;,：；，')}。"
    return f"{text.rstrip(':;,')}."


def sentences(first: str, second: str) -> str:
    """Two messages as two sentences, as each language writes them: English ends the first
    with ". " unless it has a stop; Chinese with a full-width "。" and no space."""
    first, second = first.strip(), second.strip()
    if not first or not second:
        return first or second
    first = _ended(first)
    # A full-width stop takes no space after it; a Latin one does.
    return f"{first}{'' if first.endswith(_FULL_WIDTH_STOPS) else ' '}{second}"


# A first word written as it is: a plain word of lower-case letters (an apostrophe or a
# hyphen inside) takes a capital; an identifier (--port, %scnet_url, a URL, a path, aiUrls) not.
_PLAIN_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*[,:;.!?]?")
_COMMANDS = ("scnet",)  # command names, written in lower case wherever they stand


def as_sentence(text: str) -> str:
    """A message as the language writes a sentence to show: in English its first word
    capitalised (unless it is an identifier) and a full stop at the end unless it has one;
    in Chinese a full-width "。". Text of several lines (quoted output) keeps its end."""
    text = text.strip()
    if not text or "\n" in text:
        return text
    first = text.split(maxsplit=1)[0]
    english = i18n.current() != "zh"
    if english and _PLAIN_WORD.fullmatch(first) and first.rstrip(",:;.!?") not in _COMMANDS:
        text = text[0].upper() + text[1:]
    return _ended(text)


class Sentences(Message):
    """Messages written one after the other as sentences (:func:`sentences`), in the language
    in force when shown."""

    __slots__ = ("parts",)

    def __init__(self, *parts: str | Message) -> None:
        super().__init__("")
        self.parts = [as_message(part) for part in parts]

    def __str__(self) -> str:
        return functools.reduce(sentences, map(str, self.parts), "")

    def __repr__(self) -> str:
        return f"Sentences{tuple(self.parts)!r}"


class ScnetError(Exception):
    """Root of every error raised by scnet-magic. ``message`` and ``hint``: message ids filled
    with ``values`` once translated, or :class:`~scnet_magic.i18n.Message`\\ s."""

    # A start's result (a StartResult) when the failure came after the platform's answer, such
    # as a wait that ran out (NotReady): a front end shows the result, then the error.
    result: Any = None

    def __init__(self, message: str | Message, hint: str | Message = "", /, **values: Any) -> None:
        super().__init__(message)
        self._message = as_message(message, **values)
        self._hint = as_message(hint, **values)
        self.values = values
        # The endpoint the failed call went to ("GET /ai/openapi/v2/notebook/detail"), for the
        # instance calls whose answers are not documented: the message names it.
        self.endpoint = ""

    def at(self, endpoint: str) -> ScnetError:
        """This error, its message naming ``endpoint``; returns it, to be raised."""
        self.endpoint = endpoint
        return self

    def _text(self) -> str:
        return str(self._message)

    @property
    def message(self) -> str:
        """The message, one line, in the language in force."""
        if not self.endpoint:
            return self._text()
        return _("{message} (calling {endpoint})").format(
            message=self._text(), endpoint=self.endpoint
        )

    @property
    def hint(self) -> str:
        """What to do about it ("" when there is nothing to say)."""
        return str(self._hint)

    @property
    def hint_message(self) -> Message:
        """The hint, unwritten: to pass on in another error."""
        return self._hint

    def add_hint(self, more: Message) -> ScnetError:
        """This error, ``more`` said after its hint; returns it, to be raised."""
        self._hint = Sentences(self._hint, more) if str(self._hint) else more
        return self

    def with_hint(self: _E, hint: str | Message) -> _E:
        """This error, ``hint`` in place of its own; returns it, to be raised."""
        self._hint = as_message(hint)
        return self

    def __str__(self) -> str:
        return self.message

    def user_message(self) -> str:
        """The message and the hint as two sentences, as every front end shows them."""
        return sentences(as_sentence(self.message), as_sentence(self.hint))

    def label(self) -> str:
        """A short name for the kind of failure, for a terminal's one-line error."""
        return type(self).__name__


class InvalidInput(ScnetError, ValueError):
    """An argument is invalid (id, port, command, token, base URL, timeout); nothing was sent."""


class ConfigError(ScnetError):
    """A required setting (for example the token) is missing or unreadable."""


class LoginError(ScnetError):
    """Signing in gave no usable region (suspended account, unknown region, no enabled address)."""


class ApiError(ScnetError):
    """The platform answered with an envelope whose ``code`` is not "0"."""

    def __init__(
        self,
        code: str,
        msg: str,
        status: int = 200,
        *,
        prefix: str = "",
        hint: str | Message = "",
    ) -> None:
        self.code = code
        self.msg = msg
        self.status = status
        self.info = ERROR_CODES.get(code)
        self.meaning = self.info.meaning if self.info else None
        # ``prefix`` says what the call was ("sign-in refused: "); ``hint`` replaces the
        # code table's advice where the caller knows better.
        self._prefix = prefix
        default_hint = self.info.hint if self.info else UNKNOWN_CODE_HINT
        super().__init__("SCNet API error", hint or default_hint)

    def _text(self) -> str:
        details = [_(self.info.meaning)] if self.info else []
        # The status matters when the envelope came with an HTTP error (401, 500...).
        if self.status != 200:
            details.append(f"HTTP {self.status}")
        joined = _(_LIST_SEPARATOR).join(details)
        shown_details = _(" ({details})").format(details=joined) if details else ""
        # The platform's msg is shown as it came, whatever the language.
        text = _("SCNet API error {code}{details}: {msg}").format(
            code=one_line(self.code, 40),
            details=shown_details,
            msg=one_line(self.msg) or _("(no message)"),
        )
        return _(self._prefix).format(problem=text) if self._prefix else text


class HttpError(ScnetError):
    """The server answered with an HTTP status that is not a platform answer (3xx, 4xx, 5xx)."""

    def __init__(self, status: int, reason: str, body: str, hint: str | Message = "") -> None:
        self.status = status
        self.reason = reason
        self.body = body
        super().__init__("HTTP error", hint)

    def _text(self) -> str:
        shown = f": {self.body}" if self.body else ""
        return f"HTTP {self.status} {self.reason}".rstrip() + shown


class MalformedResponse(ScnetError):
    """The server's answer is not the documented JSON envelope (not JSON, or the wrong shape)."""

    def __init__(
        self, problem: str | Message, status: int, body: str, hint: str | Message = ""
    ) -> None:
        self.problem = problem
        self.status = status
        self.body = body
        super().__init__(
            N_("Unexpected answer (HTTP {status}, {problem}){body}"),
            hint,
            status=status,
            problem=as_message(problem),
            body=f": {body}" if body else "",
        )


class TransportError(ScnetError, ConnectionError):
    """The request did not complete: connection refused or reset, TLS failure, bad URL."""


class RequestTimeout(TransportError, TimeoutError):
    """The server did not answer within the timeout."""


class NotReady(ScnetError, TimeoutError):
    """The service's external URL did not answer (other than with a gateway error) in time."""

    def __init__(self, url: str, timeout: float, last: str, hint: str | Message = "") -> None:
        self.url = url
        self.timeout = timeout
        self.last = last
        super().__init__(
            N_("Service not ready after {timeout} s: {url} (last check: {last})"),
            hint,
            timeout=f"{timeout:g}",
            url=url,
            last=last,
        )


class GuardUnreachable(ScnetError):
    """The external URL does not reach the guard this front end started (``--protect``)."""


class GuardFailed(ScnetError):
    """The guard for ``--protect`` could not be started or reused."""


class InstanceError(ScnetError):
    """The notebook instance is not in the state a call needs; ``status`` is the last status
    seen, as sent; ``shown_status``, how the message names it, if not so."""

    def __init__(
        self,
        message: str | Message,
        hint: str | Message = "",
        /,
        *,
        notebook_id: str,
        status: str,
        shown_status: str | Message | None = None,
        **values: Any,
    ) -> None:
        self.notebook_id = notebook_id
        self.status = status
        shown = status if shown_status is None else shown_status
        super().__init__(message, hint, notebook_id=notebook_id, status=shown, **values)


class InstanceTimeout(InstanceError, TimeoutError):
    """The instance did not reach the status waited for in time."""


class CommandEnded(NotReady):
    """The command a start ran has ended on the kernel's machine while nothing answered, so
    the wait stops at once. ``log``: its log file (None: none), ``last_lines``: its last."""

    def __init__(
        self, url: str, timeout: float, elapsed: float, log: str | None, last_lines: str
    ) -> None:
        self.log = log
        self.last_lines = last_lines
        if not last_lines and log is not None:
            hint = N_("Look at its log, {log}, in the folder the command ran in.")
        elif not last_lines:
            hint = N_("It wrote nothing: run the command in a terminal to see why it ends.")
        elif log is not None:
            hint = N_("The last lines of {log}:\n{lines}")
        else:
            hint = N_("The last lines of its output:\n{lines}")
        super().__init__(url, timeout, "ended", Message(hint, log=log or "", lines=last_lines))
        self._message = Message(
            N_(
                "The command has ended and nothing answers at {url}: the service will not come "
                "up (seen {elapsed} s after the start)"
            ),
            elapsed=f"{elapsed:.1f}",
            url=url,
        )
        self.args = (self._message,)
