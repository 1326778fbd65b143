"""One IPython session's state, as a plain object the magics share and a test can make without
IPython. The options ``%config ScnetMagics.*`` sets live on the configurable the session is
given (:class:`~scnet_magic.magics.core.ScnetMagics` in IPython, :class:`Options` elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from .. import config, i18n
from ..config import Settings
from ..errors import InvalidInput, ScnetError
from ..i18n import N_, _

if TYPE_CHECKING:
    from ..client import ScnetClient
    from ..models import Account, Login, Menu


class SessionOptions(Protocol):
    """The options ``%config ScnetMagics.*`` sets, and those it refused (name -> why)."""

    base_url: str | None  # the sandbox and sign-in set these two
    notebook_id: Any

    @property
    def timeout(self) -> float | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def short_errors(self) -> bool: ...
    @property
    def refused(self) -> dict[str, str]: ...


@dataclass
class Options:
    """The options outside IPython (a test, a script): plain values, nothing refused."""

    base_url: str | None = None
    notebook_id: Any = None
    timeout: float | None = None
    language: str | None = None
    short_errors: bool = True
    refused: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Widgets:
    """How to show widgets: they live in another front end, which the package root hands in
    when it loads the extension (the magics never import it)."""

    # (settings callable, language, field defaults) -> the start form
    form: Callable[..., Any] | None = None
    # (account, on_login) -> a dropdown of the account's regions
    pick_region: Callable[[Account, Callable[[Login], str]], Any] | None = None
    # (warning, button label, action returning the HTML to show) -> a confirmation
    confirm: Callable[[str, str, Callable[[], str]], Any] | None = None


NO_WIDGETS = Widgets()  # a session without a notebook front end: a test, a script


class Session:
    """The state one IPython session's magics share."""

    def __init__(
        self,
        options: SessionOptions | None = None,
        *,
        shell: Any = None,
        widgets: Widgets = NO_WIDGETS,
    ) -> None:
        self.options: SessionOptions = options if options is not None else Options()
        self.shell = shell
        self.widgets = widgets
        self.token: str | None = None  # from %scnet_token, %scnet_login or %scnet_sandbox
        self.token_origin = "%scnet_token"  # which of those, for "using …" messages
        self.login: Login | None = None  # the last %scnet_login; memory only
        # Where this session signs in, renews and checks tokens (%scnet_sandbox points them at
        # its own hosts); None: the environment, the config file, the defaults.
        self.login_url: str | None = None
        self.ac_url: str | None = None
        self.sandbox: Any = None
        self._before_sandbox: list[tuple[object, str, Any]] = []  # what the sandbox replaced
        self._client: ScnetClient | None = None
        self._client_key: tuple[str, str, float, str] | None = None

    def __repr__(self) -> str:
        return f"<scnet-magic session, token {'set' if self.token else 'not set'}>"

    def settings(self) -> Settings:
        """The settings in force now: session values first, then environment, then file."""
        options = self.options
        if options.refused:
            name, problem = next(iter(options.refused.items()))
            raise InvalidInput(
                N_("{problem} (refused by %config ScnetMagics.{name}, which kept its old value)"),
                N_("Set it again with a valid value, or to None for the default."),
                problem=problem,
                name=name,
            )
        return config.resolve(session=self.values(), session_token_label=self.token_origin)

    def values(self) -> dict[str, Any]:
        """The settings this session holds (None: not set here)."""
        options = self.options
        return {
            "token": self.token,
            "base_url": options.base_url,
            "notebook_id": options.notebook_id,
            "timeout": options.timeout,
            "language": options.language,
            "login_url": self.login_url,
            "ac_url": self.ac_url,
        }

    def language(self) -> str:
        """The session's language: ``%config ScnetMagics.language``, else ``SCNET_LANG``, the
        config file's, the locale. A config file that cannot be read gives the environment's
        (the settings, if the call needs them, say what is wrong with it)."""
        try:
            return config.resolve_language(self.options.language)
        except ScnetError:
            return i18n.environment_language()

    def client(self, settings: Settings | None = None) -> ScnetClient:
        """A client for the current settings, reused while they stay the same (keep-alive)."""
        from ..client import ScnetClient

        settings = settings or self.settings()
        key = (settings.base_url, settings.require_token(), settings.timeout, settings.ac_url)
        if self._client is None or key != self._client_key:
            self.close_client()
            self._client = ScnetClient(settings=settings)
            self._client_key = key
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._client_key = None

    def close(self) -> None:
        """Release the client and stop a sandbox started from this session."""
        self.close_client()
        self.stop_sandbox()

    def use_token(self, token: str | None, origin: str = "%scnet_token") -> None:
        """Use ``token`` from now on (None: forget it), saying where it came from."""
        self.token = token
        self.token_origin = origin
        self.close_client()

    def widgets_shown(self) -> bool:
        """Widgets need a kernel that talks to a front end; a terminal IPython has none."""
        return getattr(self.shell, "kernel", None) is not None

    def sign_in(
        self,
        region: str | None,
        user: str | None,
        ask: Callable[[str, bool], str],
        *,
        save: bool = False,
        menu: Menu | None = None,
    ) -> Any:
        """Sign in (``ask`` prompts for what is not set) and say so; with several regions and
        none named: in a notebook, a dropdown that signs in when one is chosen; at a terminal,
        ``menu`` (a numbered list, as ``scnet login`` offers)."""
        from .. import account as accounts

        known: dict[str, Any] = {
            "timeout": self.options.timeout,
            "login_url": self.login_url,
            "ac_url": self.ac_url,
        }
        if self.sandbox is not None:
            # The sandbox's own account: signing in to it needs no keys typed.
            keys = ("user", "access_key", "secret_key")
            known |= {key: getattr(self.sandbox, key) for key in keys}
        settings = config.resolve_login(user=user, session=known)
        account = accounts.request_account(settings, ask)
        picker = self.widgets.pick_region
        if region is None and len(account.usable) > 1 and self.widgets_shown() and picker:
            return picker(account, lambda chosen: self.use_login(chosen, save))
        return self.use_login(accounts.open_region(account, account.choose(region, menu)), save)

    def use_login(self, signed: Login, save: bool = False) -> str:
        """Make the session use a signed-in region's token and address; say so."""
        self.login = signed
        self.use_token(signed.token, "%scnet_login")
        self.options.base_url = signed.base_url
        text = (
            signed.describe() + "\n" + _("This session now uses its token (kept in memory only).")
        )
        if save:
            path = config.save_config(signed.saved_settings())
            text += "\n" + saved_note().format(path=path)
            text += "\n" + config.override_warning()
        return text.rstrip("\n")

    def sign_out(self) -> str:
        """Forget this session's sign-in and remove the saved one from the config file; say
        what went, and from where."""
        text = ""
        if self.login is not None:
            if self.token == self.login.token:
                self.use_token(None)
            self.login = None
            text = _("This session's sign-in is forgotten.") + "\n"
        path, removed = config.forget_sign_in()
        return text + config.signed_out_text(path, removed)

    def renew(self, save: bool = False) -> str:
        """Renew the current token; the session (and with ``save`` the config file) uses it."""
        settings = self.settings()
        old = settings.require_token()
        from ..account import renew_in_force

        # The sign-in of this session, if it gave the token: its region picks the entry.
        login = self.login if self.login is not None and self.login.token == old else None
        new = renew_in_force(settings, login.region_id if login else None)
        self.use_token(new, self.token_origin)
        if login is not None:
            self.login = replace(login, token=new)
        text = _("Token renewed; this session now uses the new one (kept in memory only).")
        if save:
            path = config.save_config({"token": new, "base_url": settings.base_url})
            text += "\n" + saved_note().format(path=path)
        return text

    def login_status(self) -> str:
        """Account, region, address and whether the token is valid; never the token."""
        settings = self.settings()
        current = self.login
        if current is not None and current.token != settings.token:
            current = None  # replaced since, by %scnet_token for one
        from .. import display
        from ..account import state_in_force

        state = state_in_force(settings)
        saved = config.read_config_file() if current is None else {}
        return display.login_status_text(settings, current, state, saved, "%scnet_login")

    def use_sandbox(self, execute: bool, workdir: str | None = None) -> Any:
        """Start a sandbox and point this session at it; the sandbox."""
        from ..sandbox import Sandbox

        self.stop_sandbox()
        # Commands run in the kernel's current folder unless told otherwise: the sandbox's
        # one rule, the same as `scnet sandbox` and `Sandbox()`.
        self.sandbox = sandbox = Sandbox(execute=execute, workdir=workdir).start()
        # What the sandbox points at itself, and its stop puts back. %scnet_login, renewal and
        # the token check go to its login and platform hosts, as a real account's go to SCNet's.
        pointed: list[tuple[object, str, Any]] = [
            (self.options, "base_url", sandbox.base_url),
            (self.options, "notebook_id", sandbox.notebook_id),
            (self, "token", sandbox.token),
            (self, "token_origin", "%scnet_sandbox"),
            (self, "login_url", sandbox.login_url),
            (self, "ac_url", sandbox.ac_url),
        ]
        self._before_sandbox = [
            (holder, name, getattr(holder, name)) for holder, name, _new in pointed
        ]
        for holder, name, value in pointed:
            setattr(holder, name, value)
        self.close_client()
        return sandbox

    def stop_sandbox(self) -> bool:
        """Stop this session's sandbox and put back what it replaced; False if none ran."""
        if self.sandbox is None:
            return False
        self.sandbox.stop()
        self.sandbox = None
        for holder, name, value in self._before_sandbox:
            setattr(holder, name, value)
        self._before_sandbox = []
        self.close_client()
        return True


def saved_note() -> str:
    return _("Saved the token and address to {path} (readable by you only).")
