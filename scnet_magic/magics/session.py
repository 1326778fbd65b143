"""What the magics do to the session beyond one call: signing in (``%scnet_login``) and the
sandbox (``%scnet_sandbox``), each pointing the session's token and address somewhere."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import config
from ..config import Settings
from ..i18n import _
from .line import ask, saved_note

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..models import Account, Login


# What %scnet_sandbox points at itself, and --stop puts back.
_SANDBOX_REPLACES = ("base_url", "notebook_id", "_token", "_token_origin", "_login_url", "_ac_url")


class SessionMixin:
    """Signing in and the sandbox, for :class:`~scnet_magic.magics.core.ScnetMagics`."""

    # Set by ScnetMagics (traits and session state).
    shell: InteractiveShell | None
    base_url: str | None
    notebook_id: Any
    timeout: float | None
    _token: str | None
    _token_origin: str
    _login: Login | None
    _login_url: str | None
    _ac_url: str | None
    _sandbox: Any
    _before_sandbox: tuple[Any, ...] | None
    pick_region: Callable[[Account, Callable[[Login], str]], Any] | None

    def settings(self) -> Settings:
        raise NotImplementedError

    def close_client(self) -> None:
        raise NotImplementedError

    # -- %scnet_login ----------------------------------------------------------------------

    def sign_in(self, region: str | None, user: str | None, *, save: bool = False) -> None:
        """Sign in; with several regions and none named, show a dropdown in a notebook."""
        from .. import account as accounts

        settings = config.resolve_login(
            user=user,
            session={"timeout": self.timeout, "login_url": self._login_url, "ac_url": self._ac_url},
        )
        account = accounts.request_account(settings, ask)
        if (
            region is None
            and len(account.usable) > 1
            and self._widgets_shown()
            and self.pick_region is not None
        ):
            from IPython.display import display as show_widget

            show_widget(self.pick_region(account, lambda chosen: self.use_login(chosen, save)))
            return
        print(self.use_login(accounts.open_region(account, account.choose(region)), save))

    def use_login(self, signed: Login, save: bool = False) -> str:
        """Make the session use a signed-in region's token and address; say so."""
        self._login = signed
        self._token = signed.token
        self._token_origin = "%scnet_login"
        self.base_url = signed.base_url
        self.close_client()
        text = (
            signed.describe() + "\n" + _("This session now uses its token (kept in memory only).")
        )
        if save:
            path = config.save_config(signed.saved_settings())
            text += "\n" + saved_note().format(path=path)
        return text

    def _region(self, settings: Settings) -> str | None:
        """The region of the token in force, when known: the one signed in to in this session,
        else the one the config file names beside its token."""
        if self._login is not None and self._login.token == settings.token:
            return self._login.region_id
        return settings.token_region

    def renew(self, save: bool = False) -> str:
        """Renew the current token; the session (and with ``save`` the config file) uses it."""
        settings = self.settings()
        old = settings.require_token()
        from .. import account as accounts

        new = accounts.renew_token(
            old, ac_url=settings.ac_url, timeout=settings.timeout, region=self._region(settings)
        )
        self._token = new
        if self._login is not None and self._login.token == old:
            self._login = replace(self._login, token=new)
        self.close_client()
        text = _("Token renewed; this session now uses the new one (kept in memory only).")
        if save:
            path = config.save_config({"token": new, "base_url": settings.base_url})
            text += "\n" + saved_note().format(path=path)
        return text

    def login_status(self) -> str:
        """Account, region, address and whether the token is valid; never the token."""
        settings = self.settings()
        current = self._login
        if current is not None and current.token != settings.token:
            current = None  # replaced since, by %scnet_token for one
        state = None
        if settings.token is not None:
            from .. import account as accounts

            state = accounts.token_state(
                settings.token, ac_url=settings.ac_url, timeout=settings.timeout
            )
        saved = config.read_config_file() if current is None else {}
        from .. import display

        return display.login_status_text(settings, current, state, saved, "%scnet_login")

    def _widgets_shown(self) -> bool:
        # Widgets need a kernel that talks to a front end; a terminal IPython has none.
        return getattr(self.shell, "kernel", None) is not None

    # -- %scnet_sandbox --------------------------------------------------------------------

    def use_sandbox(self, execute: bool) -> Any:
        """Start a sandbox and point this session at it."""
        from ..sandbox import Sandbox

        self._stop_sandbox()
        # Commands run in the notebook's folder, as they would in the instance's home.
        sandbox = Sandbox(execute=execute, workdir=os.getcwd()).start()
        self._before_sandbox = tuple(getattr(self, name) for name in _SANDBOX_REPLACES)
        self._sandbox = sandbox
        self.base_url = sandbox.base_url
        self.notebook_id = sandbox.notebook_id
        self._token = sandbox.token
        self._token_origin = "%scnet_sandbox"
        # %scnet_login, renewal and the token check go to the sandbox's login and platform
        # hosts, as a real account's go to SCNet's.
        self._login_url = sandbox.login_url
        self._ac_url = sandbox.ac_url
        self.close_client()
        mode = _("on: commands run on this machine") if execute else _("off")
        print(
            _(
                "Sandbox running at {url} (execution {mode}).\n"
                "This session now uses it, with notebook {notebook_id} as the default. "
                "Stop it with %scnet_sandbox --stop."
            ).format(url=sandbox.base_url, mode=mode, notebook_id=sandbox.notebook_id)
        )
        return sandbox

    def _stop_sandbox(self) -> bool:
        if self._sandbox is None:
            return False
        self._sandbox.stop()
        self._sandbox = None
        if self._before_sandbox is not None:
            for name, value in zip(_SANDBOX_REPLACES, self._before_sandbox, strict=True):
                setattr(self, name, value)
            self._before_sandbox = None
        self.close_client()
        return True
