"""Every setting, resolved once per call into one immutable :class:`Settings`.

First hit wins: explicit argument, session value (``%config ScnetMagics.x``, ``%scnet_token``),
environment (:data:`ENV_VARS`), the TOML user config file, the defaults. Nothing is read at
import time, so a change to the environment or the file takes effect on the next call.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import i18n, validation
from .errors import ConfigError, InvalidInput, Sentences
from .i18n import N_, Message, _

DEFAULT_BASE_URL = "https://scnet-demo.accloud.cn"
# Where access-key sign-in lives (POST /api/user/v3/tokens).
DEFAULT_LOGIN_URL = "https://api.scnet.cn"
# Where the platform's own calls live (/ac/...: regions, renewal, token state, boot).
DEFAULT_AC_URL = "https://www.scnet.cn"
# Starting a service makes the platform run the command and probe the port before it answers.
DEFAULT_TIMEOUT = 60.0
# How long --wait waits for the external URL: a web UI that loads a large model takes minutes.
DEFAULT_WAIT = 300.0

ENV_VARS = {
    "token": "SCNET_TOKEN",
    "base_url": "SCNET_BASE_URL",
    "notebook_id": "SCNET_NOTEBOOK_ID",
    "timeout": "SCNET_TIMEOUT",
    # Signing in (see scnet_magic.account).
    "login_url": "SCNET_LOGIN_URL",
    "ac_url": "SCNET_AC_URL",
    "user": "SCNET_USER",
    "access_key": "SCNET_ACCESS_KEY",
    "secret_key": "SCNET_SECRET_KEY",
    # The language of messages (see scnet_magic.i18n).
    "language": i18n.LANGUAGE_ENV,
}
# Points at another config file (tests, several accounts); not a setting of its own.
CONFIG_FILE_ENV = "SCNET_CONFIG_FILE"

T = TypeVar("T")
D = TypeVar("D")


def config_path() -> Path:
    """The user config file: ``$SCNET_CONFIG_FILE`` or ``<user config dir>/scnet/config.toml``."""
    override = os.environ.get(CONFIG_FILE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs  # only needed when no override is set

    return platformdirs.user_config_path("scnet") / "config.toml"


def _shown_path(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


_warned: set[str] = set()


def warn_once(text: str) -> None:
    """One line on stderr, once per process: a setting worth fixing, not worth stopping for
    (Python's warnings would add the source line of the code that warned)."""
    if text not in _warned:
        _warned.add(text)
        print(_("Warning: {text}").format(text=text), file=sys.stderr)


# A config file that cannot be read stops every call that reads it: say how to get out.
BROKEN_FILE_HINT = N_("Correct the file or move it aside; SCNET_CONFIG_FILE chooses another one.")


def _file_error(
    message: str, path: Path, reason: object, hint: str = BROKEN_FILE_HINT
) -> ConfigError:
    return ConfigError(message, hint, path=_shown_path(path), reason=reason)


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """The config file's table, or {} when there is none; a warning when it holds a token or
    a secret key (a credential for the whole account) and other users can read it."""
    path = path or config_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _file_error(
            N_("cannot read config file {path}: {reason}"), path, exc.strerror
        ) from None
    # Imported only when there is a file to read: %load_ext need not pay for the parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        table: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _file_error(N_("config file {path} is not valid TOML: {reason}"), path, exc) from None
    secret = next((name for name in ("token", "secret_key") if name in table), None)
    shared = stat.S_IRWXG | stat.S_IRWXO
    if secret is not None and os.name == "posix" and path.stat().st_mode & shared:
        what = _("a token") if secret == "token" else _("a secret key")
        warn_once(
            _(
                "config file {path} holds {what} and other users can read it; run: chmod 600 {path}"
            ).format(path=_shown_path(path), what=what)
        )
    return table


@dataclass(frozen=True)
class Settings:
    """The settings in force for one call, and where the token came from."""

    token: str | None = field(repr=False)
    token_source: str | None
    base_url: str
    notebook_id: str | None
    timeout: float
    language: str = "en"
    login_url: str = DEFAULT_LOGIN_URL
    ac_url: str = DEFAULT_AC_URL
    # The region the config file names beside the token, when the token came from that file
    # (signing in saves both): what picks this token's entry from a renewal listing several.
    token_region: str | None = None
    # Where the base URL came from (SCNET_BASE_URL, the config file, ...): errors of a call
    # that could not connect name it. None: the default, the documentation's example host.
    base_url_source: str | None = None

    @property
    def base_url_default(self) -> bool:
        return self.base_url_source is None

    def require_token(self) -> str:
        if self.token is None:
            raise no_token_error(
                Message(
                    N_(
                        "Sign in with %scnet_login (scnet login in a shell), or give a token with "
                        '%scnet_token, SCNET_TOKEN or token = "…" in {path}. To try things '
                        "without an account, run %scnet_sandbox --execute."
                    ),
                    path=_shown_path(config_path()),
                )
            )
        return self.token


def no_token_error(hint: Message) -> ConfigError:
    """The error of a call that needs a token and has none; ``hint`` is the front end's way
    forward. A ``SCNET_CONFIG_FILE`` that names no file is read as empty (signing in with
    ``--save`` creates it): named first, as the likeliest reason (a mistyped path)."""
    missing = config_path() if os.environ.get(CONFIG_FILE_ENV) else None
    if missing is not None and not missing.exists():
        hint = Sentences(
            Message(
                N_("SCNET_CONFIG_FILE names {path}, which does not exist"),
                path=_shown_path(missing),
            ),
            hint,
        )
    return ConfigError(N_("No SCNET token is set."), hint)


class _Lookup:
    """One setting's candidates in order; the config file is read only if it is needed."""

    def __init__(self, explicit: Mapping[str, Any], session: Mapping[str, Any]) -> None:
        self._explicit = explicit
        self._session = session
        self._file: dict[str, Any] | None = None
        self._file_label = ""

    def _file_table(self) -> dict[str, Any]:
        if self._file is None:
            path = config_path()
            self._file = read_config_file(path)
            # Source labels stay English: they name a file, a variable or a magic, and they
            # appear in machine-readable output (scnet login --status --json).
            self._file_label = f"config file {_shown_path(path)}"
        return self._file

    def find(self, name: str, session_label: str = "session") -> tuple[Any, str] | None:
        if self._explicit.get(name) is not None:
            return self._explicit[name], "argument"
        if self._session.get(name) is not None:
            return self._session[name], session_label
        env_name = ENV_VARS[name]
        if os.environ.get(env_name):
            return os.environ[env_name], env_name
        table = self._file_table()
        if table.get(name) is not None:
            return table[name], self._file_label
        return None

    def region_beside(self, token_source: str | None) -> str | None:
        """The config file's ``region`` when ``token_source`` is that file, else None."""
        # (The label is set once the file was read, as it was for the token.)
        region = self._file_table().get("region") if token_source == self._file_label else None
        return region.strip() if isinstance(region, str) and region.strip() else None

    def language(self) -> str:
        """The language. One from the environment or the file that names no language gives
        English and a warning (a typo there must not stop every call); an explicit or session
        value is refused (it was just typed)."""
        found = self.find("language")
        if found is None:
            return i18n.locale_language()
        value, source = found
        if source in ("argument", "session"):
            return validation.validate_language(value)
        language = i18n.known(value)
        if language is None:
            warn_once(
                _("unknown language {value} in {source} (en or zh); using English.").format(
                    value=repr(str(value))[:40], source=source
                )
            )
            return "en"
        return language

    def checked(
        self, name: str, check: Callable[[object], T], session_label: str = "session"
    ) -> tuple[T, str] | tuple[None, None]:
        """The checked value and its source; (None, None) when no source has one."""
        found = self.find(name, session_label)
        if found is None:
            return None, None
        try:
            return check(found[0]), found[1]
        except InvalidInput as exc:
            # Say where the bad value came from: it may be an old environment variable.
            raise InvalidInput(
                N_("{problem} (from {source})"), exc.hint_message, problem=exc, source=found[1]
            ) from None

    def value(self, name: str, check: Callable[[object], T], default: D) -> T | D:
        found = self.checked(name, check)
        return default if found[1] is None else found[0]


def resolve(
    *,
    token: str | None = None,
    base_url: str | None = None,
    notebook_id: str | int | None = None,
    timeout: float | None = None,
    language: str | None = None,
    session: Mapping[str, Any] | None = None,
    session_token_label: str = "%scnet_token",
    ac_url: str | None = None,
) -> Settings:
    """The settings for one call, each from the first source that has it.
    ``session_token_label`` names the magic a session token came from."""
    explicit = dict(token=token, base_url=base_url, notebook_id=notebook_id, timeout=timeout)
    lookup = _Lookup({**explicit, "language": language, "ac_url": ac_url}, session or {})
    token, token_source = lookup.checked("token", validation.validate_token, session_token_label)
    address, base_url_source = lookup.checked("base_url", validation.validate_base_url)
    return Settings(
        token=token,
        token_source=token_source,
        base_url=DEFAULT_BASE_URL if address is None else address,
        notebook_id=lookup.value("notebook_id", validation.validate_notebook_id, None),
        timeout=lookup.value("timeout", validation.validate_timeout, DEFAULT_TIMEOUT),
        login_url=lookup.value("login_url", validation.validate_login_url, DEFAULT_LOGIN_URL),
        ac_url=lookup.value("ac_url", validation.validate_ac_url, DEFAULT_AC_URL),
        language=lookup.language(),  # checked last: a bad address or id is reported first
        token_region=lookup.region_beside(token_source),
        base_url_source=base_url_source,
    )


def resolve_language(explicit: object = None) -> str:
    """The language for a call: ``explicit``, else ``SCNET_LANG``, the config file, the locale."""
    return _Lookup({"language": explicit}, {}).language()


# The settings of the IPython session that loaded the extension (its %config values and
# session token), for a form shown from plain Python in that session.
_session_settings: Callable[[], Settings] | None = None


def use_session(source: Callable[[], Settings] | None) -> None:
    """Make ``source`` what :func:`current_settings` asks (None: nothing but the environment)."""
    global _session_settings
    _session_settings = source


def current_settings() -> Settings:
    """The session's settings when an extension session is loaded, else :func:`resolve`'s."""
    return _session_settings() if _session_settings is not None else resolve()


@dataclass(frozen=True)
class LoginSettings:
    """The sign-in settings for one call; a credential not found anywhere is None."""

    user: str | None
    access_key: str | None
    secret_key: str | None = field(repr=False)
    login_url: str
    timeout: float
    ac_url: str = DEFAULT_AC_URL


def resolve_login(
    *,
    user: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    login_url: str | None = None,
    ac_url: str | None = None,
    timeout: float | None = None,
    session: Mapping[str, Any] | None = None,
    keys: bool = True,
) -> LoginSettings:
    """The credentials and addresses for signing in, each from the first source that has it;
    ``keys=False`` leaves the credentials out (renewal and the token check need none)."""
    explicit = dict(user=user, access_key=access_key, secret_key=secret_key, login_url=login_url)
    lookup = _Lookup({**explicit, "ac_url": ac_url, "timeout": timeout}, session or {})

    def credential(name: str, check: Callable[[object], T]) -> T | None:
        return lookup.value(name, check, None) if keys else None

    return LoginSettings(
        user=credential("user", validation.validate_account_name),
        access_key=credential("access_key", validation.validate_access_key),
        secret_key=credential("secret_key", validation.validate_secret_key),
        login_url=lookup.value("login_url", validation.validate_login_url, DEFAULT_LOGIN_URL),
        timeout=lookup.value("timeout", validation.validate_timeout, DEFAULT_TIMEOUT),
        ac_url=lookup.value("ac_url", validation.validate_ac_url, DEFAULT_AC_URL),
    )


def save_config(values: Mapping[str, str], path: Path | None = None) -> Path:
    """Set ``values`` in the user config file, keeping its other keys and comments. The file
    is replaced atomically by one readable by its owner only (it holds a token)."""
    import tomlkit

    path = path or config_path()
    document = _document_to_update(path) or tomlkit.document()
    document.update(values)
    _write_atomically(path, tomlkit.dumps(document))
    return path


def _document_to_update(path: Path) -> Any:
    """The config file as a tomlkit document that keeps its comments; None if there is none."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        hint = N_("Fix or move the file, then try again.")
        raise _file_error(
            N_("cannot update config file {path}: {reason}"), path, exc, hint
        ) from None


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a file created readable by its owner only."""
    import tempfile  # only needed when saving

    try:
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        # mkstemp creates the file with mode 0600.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        hint = N_("Check the folder's permissions, or point SCNET_CONFIG_FILE elsewhere.")
        raise _file_error(
            N_("cannot write config file {path}: {reason}"), path, exc.strerror, hint
        ) from None


# What signing in saves (models.Login.saved_settings) and a sign-out removes: the token and the
# addresses it goes with, never anything else the user wrote in the file.
SIGNED_IN_NAMES = ("token", "base_url", "ac_url", "login_url", "user", "region")


def forget_sign_in(path: Path | None = None) -> tuple[Path, list[str]]:
    """Remove the saved token and addresses from the config file, keeping its other keys and
    comments; the file and the names removed (none when nothing was saved)."""
    import tomlkit

    path = path or config_path()
    document = _document_to_update(path)
    if document is None:
        return path, []
    removed = [name for name in SIGNED_IN_NAMES if name in document]
    for name in removed:
        del document[name]
    if removed:
        _write_atomically(path, tomlkit.dumps(document))
    return path, removed


def signed_out_text(path: Path, removed: list[str]) -> str:
    """What a sign-out says: what went and from where, and what still gives a token."""
    if removed:
        text = _("Removed {names} from {path}.").format(
            names=", ".join(removed), path=_shown_path(path)
        )
    else:
        text = _("Nothing to remove: {path} holds no saved sign-in.").format(path=_shown_path(path))
    still = overriding_variables(SIGNED_IN_NAMES)
    if still:
        text += "\n" + _(
            "Still set in the environment: {variables} (unset them to sign out there too)."
        ).format(variables=", ".join(still))
    return text


def overriding_variables(names: Iterable[str]) -> list[str]:
    """The environment variables set for ``names``: they win over the config file."""
    return [ENV_VARS[name] for name in names if name in ENV_VARS and os.environ.get(ENV_VARS[name])]


def override_warning() -> str:
    """After a sign-in was saved: which exported variables override it; "" when none."""
    variables = overriding_variables(SIGNED_IN_NAMES)
    if not variables:
        return ""
    text = _(
        "{variables} set in the environment override what was saved; "
        "unset them to use the saved sign-in: unset {names}"
    ).format(variables=", ".join(variables), names=" ".join(variables))
    return _("Warning: {text}").format(text=text)
