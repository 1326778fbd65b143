"""The widgets the start form is made of that stand on their own (the secret fields, the
"Protect with a password" box, the notebook menu's labels), and the region dropdown of
``%scnet_login`` and the stop confirmation of ``%scnet_stop``."""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ipywidgets as widgets
from traitlets import Unicode

from .. import display, i18n, service
from ..errors import ScnetError
from ..i18n import N_, _
from ..models import Account, Login, Notebook
from ..validation import validate_guard_password

T = TypeVar("T")
P = ParamSpec("P")


class SecretField(widgets.Password):  # type: ignore[misc]
    """A password field (a token, a guard's password) that keeps nothing typed into it.

    The kernel never echoes the value back, and the moment a value reaches it, it is moved into
    a private copy and the field is emptied: saved widget state, ``get_state()`` and every
    output hold no secret. :meth:`take` hands the copy over once; ``on_typed`` says it came.
    """

    value = Unicode(help="String value").tag(sync=True, echo_update=False)

    def __init__(self, *, on_typed: Callable[[], object], **kwargs: Any) -> None:
        # continuous_update=False: the front end sends the value once (on Enter, or when the
        # field loses focus, which a click on Start does), not a keystroke at a time.
        super().__init__(continuous_update=False, **kwargs)
        self.__typed: str | None = None
        self.__on_typed = on_typed
        self.observe(self.__moved_out, "value")

    @property
    def ready(self) -> bool:
        return self.__typed is not None

    def take(self) -> str | None:
        """The typed value, once (None when nothing was typed since the last take)."""
        typed, self.__typed = self.__typed, None
        return typed

    def __moved_out(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.__typed = change["new"]
            self.value = ""
            self.__on_typed()


def option(description: str, tooltip: str, value: object = False) -> widgets.Checkbox:
    """A checkbox of the form, its label right of the box."""
    return widgets.Checkbox(
        value=bool(value),
        description=description,
        tooltip=tooltip,
        indent=False,
        layout=widgets.Layout(width="auto"),
    )


def in_form_language(method: Callable[P, T]) -> Callable[P, T]:
    """Run a callback of the form (a click, a background thread) in the form's language."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with i18n.using(getattr(args[0], "language", None)):
            return method(*args, **kwargs)

    return wrapper


def without_credentials(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def notebook_label(notebook: Notebook) -> str:
    name = notebook.name or _("(no name)")
    status = display.status_name(notebook.status) or _("unknown")
    # An instance has one custom port: show it, so a start on another port is no surprise;
    # the user's own port, not that of a guard in front of it (--protect).
    port = notebook.shown_port
    shown_port = ""
    if port is not None:
        shown_port = " · " + _("port {port}").format(port=port)
        if port != notebook.custom_port:
            shown_port += " " + _("(password)")
    return f"{name} · {status}{shown_port} · {notebook.id}"


def region_picker(account: Account, on_login: Callable[[Login], str]) -> Any:
    """A dropdown of the account's usable regions; choosing one opens it and calls ``on_login``.

    The tokens stay in Python: the widgets hold region names and ids only.
    """
    by_id = {region.id: region for region in account.usable}
    dropdown = widgets.Dropdown(
        options=[(region.label, region.id) for region in account.usable],
        value=None,
        description=_("Region:"),
    )
    note = account.unusable_note()
    chooses = _("Account {user}: choose a region.").format(user=account.user)
    message = widgets.HTML(html.escape(chooses + (" " + note if note else "")))
    language = i18n.current()  # a choice made later still speaks the session's language
    from .. import account as accounts

    def chosen(change: dict[str, Any]) -> None:
        region = by_id.get(change["new"])
        if region is None:
            return
        dropdown.disabled = True
        kind = "ok"
        with i18n.using(language):
            try:
                text = on_login(accounts.open_region(account, region))
            except ScnetError as exc:
                text, kind = exc.user_message(), "error"
            finally:
                dropdown.disabled = False
            message.value = display.card(kind, text)

    dropdown.observe(chosen, names="value")
    return widgets.VBox([dropdown, message])


def confirm_box(warning: str, label: str, on_confirm: Callable[[], str]) -> Any:
    """A warning, a red button that does ``on_confirm`` once (its HTML shown below), and
    Cancel. For actions that cannot be undone, such as stopping an instance."""
    text = widgets.HTML(display.card("pending", warning))
    # Wide enough for its label, in Chinese too.
    go = widgets.Button(
        description=label, button_style="danger", icon="stop", layout=widgets.Layout(width="auto")
    )
    cancel = widgets.Button(description=_("Cancel"))
    outcome = widgets.HTML()
    language = i18n.current()

    def answer(shown: Callable[[], str]) -> Callable[[Any], None]:
        def clicked(_button: Any) -> None:
            # A disabled button still calls back when clicked from code (or a stale front end).
            if go.disabled:
                return
            go.disabled = cancel.disabled = True  # one click, one request
            with i18n.using(language):
                outcome.value = shown()

        return clicked

    go.on_click(answer(on_confirm))
    cancel.on_click(answer(lambda: display.card("info", _("Not stopped."))))
    return widgets.VBox([text, widgets.HBox([go, cancel]), outcome])


class ProtectPart:
    """The checkbox, the password field and a note; :meth:`take` gives the password to Start."""

    def __init__(self, style: dict[str, str], under_fields: str) -> None:
        self.language = i18n.current()  # the form's: its notes follow it in later callbacks
        self.checkbox = option(
            _("Protect with a password"),
            _(
                "A guard on this machine asks visitors of the external URL for a password "
                "(needs this kernel to run inside the instance)"
            ),
        )
        self.password = SecretField(
            on_typed=self._show_state,
            description=_("Password"),
            style=style,
            layout=widgets.Layout(width="24em"),
        )
        # Under the fields, not beside them: beside, the note wrapped one word at a time.
        self.note = widgets.HTML(layout=widgets.Layout(margin=under_fields))
        row = widgets.HBox(
            [self.checkbox, self.password], layout=widgets.Layout(align_items="center")
        )
        self.widget = widgets.VBox([row, self.note])
        ticked = (self.checkbox, "value")
        widgets.dlink(ticked, (self.password.layout, "display"), lambda on: None if on else "none")
        self.checkbox.observe(self._show_state, "value")

    @in_form_language
    def _show_state(self, change: object = None) -> None:
        if not self.checkbox.value:
            note = ""
        elif self.password.ready:
            note = _("a typed password is ready: the next Start uses it once")
        elif os.environ.get(service.PASSWORD_ENV) is not None:
            note = _("using SCNET_GUARD_PASSWORD")
        else:
            note = _("type the password visitors will be asked for")
        self.note.value = display.note_html(note) if note else ""
        self.password.placeholder = _("received (hidden)") if self.password.ready else ""

    def take(self) -> str | None:
        """The password for this Start (None when the box is not ticked); a typed one is used
        once. Raises the problem with it."""
        typed = self.password.take()
        try:
            if not self.checkbox.value:
                return None
            if typed is not None:
                return validate_guard_password(typed)
            # SCNET_GUARD_PASSWORD, checked; without it, a problem worded for the form.
            return service.guard_password(
                no_password=N_("no password to protect the service with"),
                no_password_hint=N_(
                    "Type it into the Password field, or set SCNET_GUARD_PASSWORD."
                ),
            )
        finally:
            self._show_state()
