"""The form's "Protect with a password" box: a checkbox and a password field whose value never
stays in widget state (a :class:`~.parts.SecretField`, as the token's) and is used for one
Start."""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets

from .. import i18n, service
from ..errors import ScnetError
from ..i18n import N_, _
from ..validation import validate_guard_password
from .parts import SecretField, check, in_form_language


class ProtectPart:
    """The checkbox, the password field and a note; :meth:`take` gives the password to Start."""

    def __init__(self, style: dict[str, str]) -> None:
        self.language = i18n.current()  # the form's: its notes follow it in later callbacks
        self.checkbox = widgets.Checkbox(
            value=False,
            description=_("Protect with a password"),
            tooltip=_(
                "A guard on this machine asks visitors of the external URL for a password "
                "(needs this kernel to run inside the instance)"
            ),
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.password = SecretField(
            on_typed=self._show_state,
            description=_("Password"),
            style=style,
            layout=widgets.Layout(width="24em", display="none"),
        )
        self.note = widgets.HTML()
        self.widget = widgets.HBox(
            [self.checkbox, self.password, self.note], layout=widgets.Layout(align_items="center")
        )
        self.checkbox.observe(self._toggled, "value")

    def _toggled(self, change: dict[str, Any]) -> None:
        self.password.layout.display = None if change["new"] else "none"
        self._show_state()

    @in_form_language
    def _show_state(self) -> None:
        if not self.checkbox.value:
            note = ""
        elif self.password.ready:
            note = _("a typed password is ready: the next Start uses it once")
        elif os.environ.get(service.PASSWORD_ENV) is not None:
            note = _("using SCNET_GUARD_PASSWORD")
        else:
            note = _("type the password visitors will be asked for")
        self.note.value = f"<small>{html.escape(note)}</small>" if note else ""
        self.password.placeholder = _("received (hidden)") if self.password.ready else ""

    def take(self, problems: list[ScnetError]) -> str | None:
        """The password for this Start (None when the box is not ticked); a typed one is used
        once. A problem with it is appended to ``problems``."""
        typed = self.password.take()
        try:
            if not self.checkbox.value:
                return None
            if typed is not None:
                return check(problems, validate_guard_password, typed)
            return check(problems, _from_environment, None)
        finally:
            self._show_state()


def _from_environment(_nothing: object) -> str:
    """``SCNET_GUARD_PASSWORD``, checked; without it, a problem worded for the form."""
    return service.guard_password(
        no_password=N_("no password to protect the service with"),
        no_password_hint=N_("Type it into the Password field, or set SCNET_GUARD_PASSWORD."),
    )
