"""Result types: what the platform answered, kept as it came (``raw``), immutable; each renders
itself through :mod:`scnet_magic.display` and has a machine-readable form (``to_dict()``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from . import display
from .errors import InvalidInput, LoginError, Sentences
from .i18n import N_, Message

GATEWAY_ERRORS = frozenset({502, 503, 504})
_D = TypeVar("_D")


class Rendered:
    """A result shown through :mod:`scnet_magic.display`: as text (its repr), as HTML, and in
    IPython once per cell. A subclass names its renderers ``_text`` and ``_html``."""

    _text: ClassVar[Callable[..., str]]
    _html: ClassVar[Callable[..., str]]

    def __repr__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        return self._html()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # No application/json: JupyterLab ranks its JSON viewer above HTML and would show a
        # tree instead of the link. The JSON form is to_dict().
        return {"text/plain": self._text(), "text/html": self._html()}

    def _ipython_display_(self) -> None:
        # The magic displays its result and also returns it; when the magic's call is the last
        # line of a cell, IPython would show the returned value a second time. Skip exactly that
        # second showing: same object, same cell.
        display.show_once(self)


def _fields(shape: type[_D], result: object) -> _D:
    """A ``to_dict()``: the keys ``shape`` (one of :mod:`display`'s TypedDicts) requires, in
    its order, each ``result``'s attribute of that name."""
    required = shape.__dict__["__required_keys__"]
    keys = [key for key in shape.__annotations__ if key in required]
    return shape(**{key: getattr(result, key) for key in keys})


@dataclass(frozen=True, repr=False)
class StartResult(Rendered):
    """The platform's answer to a start request.

    ``ok``: the service answers on the port. ``pending``: the command ran but nothing listens on
    the port yet (the usual case for a slow service); the URL works once it does. ``ready``:
    a wait saw the external URL answer, ``ready_after`` seconds after the start request.
    """

    code: str
    msg: str
    exec_success: bool
    error_msg: str | None
    output: str | None
    url: str | None
    notebook_id: str
    port: int
    raw: dict[str, Any] = field(repr=False)
    ready_after: float | None = None
    # The command the start ran, so that a later wait can name its log file.
    command: str | None = field(default=None, repr=False)
    # --protect: the platform exposes the guard's port, and the guard passes visitors who know
    # the password on to ``port``.
    guard_port: int | None = None
    guard_id: str | None = field(default=None, repr=False)

    @property
    def protected(self) -> bool:
        """The external URL asks for a password: it leads to a guard in front of the service."""
        return self.guard_port is not None

    # The instance's custom service was on this other port before: an instance has one custom
    # port, so this start replaced it (known only where the instance's record was at hand).
    replaced_port: int | None = None
    # The platform is a sandbox on this machine that runs nothing (no --execute): no command
    # ran, and the URL is the shape of the platform's, an example that leads nowhere.
    nothing_ran: bool = False

    @property
    def ok(self) -> bool:
        return self.code == "0" and self.exec_success

    @property
    def ready(self) -> bool:
        return self.ready_after is not None

    @property
    def pending(self) -> bool:
        return self.code == "0" and not self.exec_success and not self.ready

    @property
    def status(self) -> str:
        if self.ready:
            return "ready"
        return "ok" if self.ok else "pending" if self.pending else "error"

    def marked_ready(self, elapsed: float) -> StartResult:
        """A copy that records that the external URL answered ``elapsed`` s after the start."""
        return replace(self, ready_after=elapsed)

    def guarded_by(self, guard_port: int, guard_id: str, port: int) -> StartResult:
        """A copy for a start that exposed a guard's port: the service's own port is ``port``."""
        return replace(self, port=port, guard_port=guard_port, guard_id=guard_id)

    def to_dict(self) -> display.StartFields:
        """The machine-readable form (what ``--json`` prints), which renders."""
        return _fields(display.StartFields, self)

    _text = display.start_text
    _html = display.start_html

    def to_json(self) -> str:
        return display.to_json(self.to_dict())


@dataclass(frozen=True, repr=False)
class ServiceUrl(Rendered):
    """The custom service's external address, as endpoint 2 reports it."""

    notebook_id: str
    url: str | None
    status: str | None
    raw: Any = field(repr=False)
    # The instance around the service (its status, custom port and command), when known.
    instance: Notebook | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> display.ServiceUrlFields:
        found = _fields(display.ServiceUrlFields, self)
        if self.instance is not None:
            found["instance"] = self.instance.to_dict()
        return found

    _text = display.service_url_text
    _html = display.service_url_html


class NotebookList(Rendered, list["Notebook"]):
    """The notebook instances the list endpoint returned, each a :class:`Notebook` (its
    record as it came in ``.raw``); renders as a table."""

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> NotebookList:
        return cls(Notebook.from_record(record) for record in records)

    @property
    def notebooks(self) -> list[Notebook]:
        return list(self)

    _text = display.notebooks_text
    _html = display.notebooks_html

    def to_dict(self) -> display.NotebookListFields:
        return {"count": len(self), "notebooks": [notebook.to_dict() for notebook in self]}


def _custom_port(value: object) -> int | None:
    """``customsizePort`` as a port number; None when unset (null, "", 0) or not a port."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    return value if type(value) is int and 1 <= value <= 65535 else None


@dataclass(frozen=True, repr=False)
class Notebook(Rendered):
    """One notebook instance as its detail (or a list record) describes it; ``custom_port`` and
    ``command``, its one custom service as the last start set it (None when unset)."""

    id: str
    name: str
    status: str
    custom_port: int | None
    command: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # Where a guard of this machine listens on ``custom_port`` (--protect): the port of the
    # user's service behind it.
    user_port: int | None = field(default=None, compare=False)

    @property
    def shown_port(self) -> int | None:
        """The port to name to the user: the service's own, not that of a guard in front."""
        return self.custom_port if self.user_port is None else self.user_port

    @classmethod
    def from_record(cls, record: dict[str, Any], notebook_id: str = "") -> Notebook:
        """Read a record tolerantly: missing fields are empty, never an error."""
        command = record.get("command")
        status = record.get("notebookStatus", record.get("status"))
        return cls(
            id=str(record.get("id") or record.get("notebookId") or notebook_id),
            name=str(record.get("notebookName") or record.get("name") or ""),
            status=str(status) if status is not None else "",
            custom_port=_custom_port(record.get("customsizePort", record.get("customizePort"))),
            command=command if isinstance(command, str) and command.strip() else None,
            raw=record,
        )

    @property
    def running(self) -> bool:
        return self.status == "Running"

    def to_dict(self) -> display.NotebookFields:
        found = _fields(display.NotebookFields, self)
        if self.user_port is not None:
            found["user_port"] = self.user_port
        return found

    _text = display.notebook_text
    _html = display.notebook_html


@dataclass(frozen=True)
class InstanceProgress:
    """Where a wait for an instance's status stands, after one look at its detail."""

    notebook_id: str
    status: str
    wanted: str
    elapsed: float
    timeout: float
    attempts: int
    name: str = ""  # the instance's, as its detail gives it

    def to_dict(self) -> display.InstanceProgressFields:
        return _fields(display.InstanceProgressFields, self)


@dataclass(repr=False)
class StopResult(Rendered):
    """A stop request's outcome: ``already_stopped`` when the platform said the instance was
    stopped before (code 817140), which is what was asked, so not an error."""

    notebook_id: str
    save_env: bool
    already_stopped: bool
    msg: str
    raw: dict[str, Any] = field(repr=False)

    def to_dict(self) -> display.StopFields:
        return _fields(display.StopFields, self)

    _text = display.stop_text
    _html = display.stop_html


# -- waiting until ready ---------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """The outcome of one check: the HTTP status (None when no answer came) and a short reason."""

    status: int | None
    reason: str

    @property
    def ready(self) -> bool:
        return self.status is not None and self.status not in GATEWAY_ERRORS


@dataclass(frozen=True)
class WaitProgress:
    """Where a wait stands after a check, for an in-place progress display."""

    url: str
    elapsed: float
    timeout: float
    attempts: int
    last: Probe

    def to_dict(self) -> display.WaitFields:
        return {"elapsed": self.elapsed, "attempts": self.attempts, "reason": self.last.reason}


@dataclass(frozen=True)
class Readiness:
    """The service answered: after ``elapsed`` seconds, at check ``attempts``, with ``status``;
    ``result``, a copy of the :class:`StartResult` the wait was given, marked ready."""

    url: str
    elapsed: float
    attempts: int
    status: int
    result: StartResult | None = field(default=None, repr=False)


# -- signing in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """One region of the account as the token endpoint lists it; the token is in no repr."""

    name: str
    id: str
    token: str | None = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"


# A front end's way to choose among an account's regions: a numbered list at a terminal.
Menu = Callable[["Account"], Region]


@dataclass(frozen=True)
class Account:
    """What one sign-in gave: the account's regions (the platform-level entry left out)."""

    user: str
    login_url: str
    timeout: float
    regions: tuple[Region, ...]
    ac_url: str = "https://www.scnet.cn"

    @property
    def usable(self) -> tuple[Region, ...]:
        return tuple(region for region in self.regions if region.token is not None)

    def unusable_note(self) -> str:
        """Why some regions are not offered, or "" when all are."""
        return str(self._unusable())

    def _unusable(self) -> Message:
        missing = [region.label for region in self.regions if region.token is None]
        if not missing:
            return Message("")
        return Message(
            N_(
                "Not offered (no token: the account may be suspended there or not opened in "
                "that region): {regions}."
            ),
            regions=", ".join(missing),
        )

    def choose(self, wanted: str | None, menu: Menu | None = None) -> Region:
        """The region named ``wanted`` (id, name, or a unique part of the name), or the only one;
        with several and none named, the one ``menu`` picks when the front end has one."""
        usable = self.usable
        labels = ", ".join(region.label for region in usable)
        if wanted is None:
            if len(usable) == 1:
                return usable[0]
            if usable and menu is not None:
                return menu(self)
            raise InvalidInput(
                N_(
                    "account {user} has {count} regions; choose one with --region "
                    "NAME_OR_ID: {regions}"
                ),
                self._unusable(),
                user=self.user,
                count=len(usable),
                regions=labels,
            )
        key = wanted.strip()
        matches = [r for r in self.regions if key in (r.id, r.name)] or [
            r for r in self.regions if key.casefold() in r.name.casefold()
        ]
        if len(matches) > 1:
            raise InvalidInput(
                N_("region {name} matches several regions: {regions}"),
                N_("Give the full name or the id."),
                name=repr(key),
                regions=", ".join(region.label for region in matches),
            )
        if not matches:
            raise LoginError(
                N_("account {user} has no region {name}"),
                Sentences(Message(N_("Regions: {regions}."), regions=labels), self._unusable()),
                user=self.user,
                name=repr(key),
            )
        region = matches[0]
        if region.token is None:
            raise LoginError(
                N_(
                    "region {region} has no token: the account may be suspended there or "
                    "not opened in that region"
                ),
                Message(
                    N_(
                        "Choose another region ({regions}), or check the account in the SCNet "
                        "console."
                    ),
                    regions=labels,
                ),
                region=region.label,
            )
        return region


@dataclass(frozen=True)
class Login:
    """A signed-in region: its token (in no repr) and the address of its notebook APIs."""

    user: str
    region: str
    region_id: str
    base_url: str
    login_url: str
    token: str = field(repr=False)
    ac_url: str = "https://www.scnet.cn"

    describe = display.login_text

    def to_dict(self) -> display.LoginFields:
        """Everything but the token."""
        return _fields(display.LoginFields, self)

    def saved_settings(self) -> dict[str, str]:
        """What ``--save`` writes to the config file: never a key, only the token and addresses
        (the platform URL, where the token is renewed, always: never one left from elsewhere)."""
        return {
            "token": self.token,
            "base_url": self.base_url,
            "ac_url": self.ac_url,
            "user": self.user,
            "region": self.region,
        }


@dataclass(frozen=True)
class TokenState:
    """Whether the platform still accepts a token, and what it said."""

    valid: bool
    detail: str

    def to_dict(self) -> display.TokenFields:
        return _fields(display.TokenFields, self)
