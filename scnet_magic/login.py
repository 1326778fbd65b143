"""Signing in with an access key pair: credentials in, a region's token and address out.

The flow (``scnet-api.md``, section 5), all at the login address (``https://api.scnet.cn``,
``SCNET_LOGIN_URL``):

1. ``POST /api/user/v3/tokens`` with the headers ``user``, ``accessKey``, ``timestamp`` and
   ``signature`` (HMAC-SHA256 of the compact JSON of the first three, keyed with the secret key,
   which itself is never sent) gives one token per region.
2. A region is chosen: by name or id, the only one, or in a notebook from a dropdown.
3. ``GET /ac/openapi/v2/center`` with that region's token lists its addresses; the first enabled
   ``aiUrls`` entry, without a trailing ``/ai``, is the base URL of the notebook APIs.

Renewal (``/ac/openapi/v2/tokens/next``) and the token-state check (``.../tokens/state``) live
there too. Front ends: ``%scnet_login``, ``scnet login`` (:func:`login_command`) and
:meth:`ScnetClient.login <scnet_magic.client.ScnetClient.login>`. The secret key only signs; it
is kept nowhere after signing in.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import html
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from . import config, i18n, models
from .client import Transport
from .config import LoginSettings, Settings
from .errors import (
    ApiError,
    ConfigError,
    HttpError,
    InvalidInput,
    LoginError,
    MalformedResponse,
    ScnetError,
)
from .i18n import N_, _

__all__ = [
    "Account",
    "AccountApi",
    "Credentials",
    "Login",
    "Region",
    "TokenState",
    "add_login_arguments",
    "login_command",
    "open_region",
    "region_picker",
    "renew_token",
    "request_account",
    "sign",
    "sign_in",
    "signed_text",
    "token_state",
]

TOKENS_PATH = "/api/user/v3/tokens"
RENEW_PATH = "/ac/openapi/v2/tokens/next"
STATE_PATH = "/ac/openapi/v2/tokens/state"
CENTER_PATH = "/ac/openapi/v2/center"
# The token endpoint lists a platform-level token under this id; it is not a region.
PLATFORM_CLUSTER_ID = "0"
VALID_STATE = "token is valid"
# Codes with which the platform refuses a token it no longer accepts.
REFUSED_TOKEN_CODES = frozenset({"10008", "10009"})

KEYS_HINT = N_(
    "Check the account name, access key and secret key (SCNet console: personal center → "
    "access control)."
)
CLOCK_HINT = N_(
    "The request is signed with this machine's clock and refused when the clock is minutes "
    "off; set the clock (NTP) and sign in again."
)

# Asks for a missing credential: (label, hidden) -> the answer.
Ask = Callable[[str, bool], str]


# ---------------------------------------------------------------------------------------------
# Signing


def signed_text(user: str, access_key: str, timestamp: str) -> str:
    """The exact text the signature covers: compact JSON of accessKey, timestamp and user."""
    fields = {"accessKey": access_key, "timestamp": timestamp, "user": user}
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def sign(user: str, access_key: str, secret_key: str, timestamp: str) -> str:
    """The lowercase hex HMAC-SHA256 of :func:`signed_text`, keyed with the secret key."""
    text = signed_text(user, access_key, timestamp).encode()
    return hmac.new(secret_key.encode(), text, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """An account name and its access key pair; the secret key appears in no repr."""

    user: str
    access_key: str
    secret_key: str = field(repr=False)

    def headers(self, timestamp: str) -> dict[str, str]:
        """The headers of a token request signed at ``timestamp`` (Unix seconds)."""
        return {
            "user": self.user,
            "accessKey": self.access_key,
            "timestamp": timestamp,
            "signature": sign(self.user, self.access_key, self.secret_key, timestamp),
        }


_CREDENTIALS = (
    # (setting, label, asked for hidden, validation)
    ("user", N_("account name"), False, models.validate_account_name),
    ("access_key", N_("access key"), True, models.validate_access_key),
    ("secret_key", N_("secret key"), True, models.validate_secret_key),
)


def credentials(settings: LoginSettings, ask: Ask | None = None) -> Credentials:
    """The account name and key pair from the settings; missing ones are asked for, if possible."""
    values: dict[str, str] = {}
    for name, label, hidden, check in _CREDENTIALS:
        value = getattr(settings, name)
        if value is None:
            if ask is None:
                raise ConfigError(
                    _("no SCNet {label} is set").format(label=_(label)),
                    _('Set {variable}, or put {name} = "…" in the config file ({path}).').format(
                        variable=config.ENV_VARS[name], name=name, path=config.config_path()
                    ),
                )
            value = check(ask(_(label), hidden))
        values[name] = value
    return Credentials(**values)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Region:
    """One region of the account as the token endpoint lists it; the token is in no repr."""

    name: str
    id: str
    token: str | None = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"


@dataclass(frozen=True)
class Account:
    """What one sign-in gave: the account's regions (the platform-level entry left out)."""

    user: str
    login_url: str
    timeout: float
    regions: tuple[Region, ...]

    @property
    def usable(self) -> tuple[Region, ...]:
        return tuple(region for region in self.regions if region.token is not None)

    def unusable_note(self) -> str:
        """Why some regions are not offered, or "" when all are."""
        missing = [region.label for region in self.regions if region.token is None]
        if not missing:
            return ""
        return _(
            "Not offered (no token: the account may be suspended there or not opened in "
            "that region): {regions}."
        ).format(regions=", ".join(missing))

    def choose(self, wanted: str | None) -> Region:
        """The region named ``wanted`` (id, name, or a unique part of the name), or the only one."""
        usable = self.usable
        if wanted is None:
            if len(usable) == 1:
                return usable[0]
            raise InvalidInput(
                _(
                    "account {user} has {count} regions; choose one with --region "
                    "NAME_OR_ID: {regions}"
                ).format(
                    user=self.user,
                    count=len(usable),
                    regions=", ".join(region.label for region in usable),
                ),
                self.unusable_note(),
            )
        key = wanted.strip()
        matches = [r for r in self.regions if key in (r.id, r.name)]
        if not matches:
            matches = [r for r in self.regions if key.casefold() in r.name.casefold()]
        if len(matches) > 1:
            raise InvalidInput(
                _("region {name} matches several regions: {regions}").format(
                    name=repr(key), regions=", ".join(region.label for region in matches)
                ),
                _("Give the full name or the id."),
            )
        if not matches:
            raise LoginError(
                _("account {user} has no region {name}").format(user=self.user, name=repr(key)),
                _("Regions: {regions}.")
                .format(regions=", ".join(region.label for region in usable))
                .strip()
                + (" " + self.unusable_note() if self.unusable_note() else ""),
            )
        region = matches[0]
        if region.token is None:
            raise LoginError(
                _(
                    "region {region} has no token: the account may be suspended there or "
                    "not opened in that region"
                ).format(region=region.label),
                _(
                    "Choose another region ({regions}), or check the account in the SCNet console."
                ).format(regions=", ".join(r.label for r in usable)),
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

    def describe(self) -> str:
        return _("Signed in as {user}, region {region} ({region_id}).\nAddress: {url}").format(
            user=self.user, region=self.region, region_id=self.region_id, url=self.base_url
        )

    def to_dict(self) -> dict[str, str]:
        """Everything but the token."""
        return {
            "user": self.user,
            "region": self.region,
            "region_id": self.region_id,
            "base_url": self.base_url,
            "login_url": self.login_url,
        }

    def saved_settings(self) -> dict[str, str]:
        """What ``--save`` writes to the config file: never a key, only the token and address."""
        return {
            "token": self.token,
            "base_url": self.base_url,
            "user": self.user,
            "region": self.region,
        }


@dataclass(frozen=True)
class TokenState:
    """Whether the platform still accepts a token, and what it said."""

    valid: bool
    detail: str


# ---------------------------------------------------------------------------------------------
# The account endpoints


class AccountApi(Transport):
    """The account endpoints at the login address: tokens, renewal, state, region discovery."""

    address_name = N_("the login URL (SCNET_LOGIN_URL)")
    unsure_post_hint = N_("Try again: asking for a token again does no harm.")

    def __init__(
        self, login_url: str, timeout: float = config.DEFAULT_TIMEOUT, *, retries: int = 2
    ) -> None:
        super().__init__(timeout, retries=retries)
        self.login_url = models.validate_login_url(login_url)

    def __repr__(self) -> str:
        return f"AccountApi(login_url={self.login_url!r}, timeout={self.timeout!r})"

    def tokens(self, creds: Credentials) -> Account:
        """Sign the token request and return the account's regions, at least one usable."""
        timestamp = str(int(time.time()))
        try:
            envelope = self._account_call("POST", TOKENS_PATH, creds.headers(timestamp))
        except ApiError as exc:
            exc.message = _("sign-in refused: {problem}").format(problem=exc.message)
            exc.hint = _refusal_hint(exc)
            raise
        regions = _regions(envelope.get("data"))
        if not regions:
            raise LoginError(
                _("the platform listed no region for account {user}").format(user=creds.user),
                _("Check the account in the SCNet console."),
            )
        account = Account(creds.user, self.login_url, self.timeout, regions)
        if not account.usable:
            raise LoginError(
                _(
                    "no region of account {user} has a token: the account may be suspended "
                    "(for example for an unpaid balance)"
                ).format(user=creds.user),
                _("Check the account in the SCNet console, or contact SCNet support."),
            )
        return account

    def region_address(self, region: Region) -> str:
        """The base URL of the region's notebook APIs: its first enabled ``aiUrls`` entry."""
        if region.token is None:
            raise LoginError(_("region {region} has no token").format(region=region.label))
        envelope = self._account_call("GET", CENTER_PATH, {"token": region.token})
        data = envelope.get("data")
        entries = [data] if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise MalformedResponse(
                _("'data' of the region list is {type}, expected a list").format(
                    type=type(data).__name__
                ),
                200,
                "",
            )
        listed = [entry for entry in entries if isinstance(entry, dict)]
        # With a region's token the list should hold that region; if it names none of them,
        # take the entries in the order given.
        same = [entry for entry in listed if _is_region(entry, region)]
        for entry in same or listed:
            addresses = entry.get("aiUrls")
            for item in addresses if isinstance(addresses, list) else ():
                if isinstance(item, dict) and _enabled(item.get("enable")):
                    url = item.get("url")
                    if isinstance(url, str) and url.strip():
                        return _api_base(url)
        raise LoginError(
            _("region {region} has no enabled notebook API address (aiUrls)").format(
                region=region.label
            ),
            _(
                "Its notebook service may be closed or under maintenance; try again later or "
                "choose another region."
            ),
        )

    def renew(self, token: str) -> str:
        """A new token in place of ``token``."""
        try:
            envelope = self._account_call("POST", RENEW_PATH, {"token": token})
        except ApiError as exc:
            if exc.code in REFUSED_TOKEN_CODES:
                exc.hint = _("The token can no longer be renewed; sign in again.")
            raise
        data = envelope.get("data")
        candidate = data.get("token") if isinstance(data, dict) else data
        try:
            return models.validate_token(candidate)
        except InvalidInput:
            # No preview: whatever came back may be part of a token.
            raise MalformedResponse(_("the renewal answer holds no token"), 200, "") from None

    def state(self, token: str) -> TokenState:
        """Whether the platform still accepts ``token``."""
        try:
            envelope = self._account_call("GET", STATE_PATH, {"token": token})
        except ApiError as exc:
            if exc.code in REFUSED_TOKEN_CODES:
                return TokenState(False, exc.message)
            raise
        data = envelope.get("data")
        detail = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return TokenState(detail.strip().lower() == VALID_STATE, detail)

    def _account_call(self, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
        try:
            return self._request(method, self.login_url + path, headers=headers)
        except HttpError as exc:
            if exc.status == 404 or 300 <= exc.status < 400:
                exc.hint = _(
                    "Check the login URL ({url}; default {default}, set with SCNET_LOGIN_URL)."
                ).format(url=self.login_url, default=config.DEFAULT_LOGIN_URL)
            raise


def _refusal_hint(exc: ApiError) -> str:
    text = exc.msg.casefold()
    if "timestamp" in text or "时间" in text:
        return _(CLOCK_HINT)
    if any(word in text for word in ("signature", "签名", "accesskey", "密钥", "user")):
        return _(KEYS_HINT)
    if exc.code in ("10001", "10007"):
        return exc.hint
    return (
        _(KEYS_HINT)
        + " "
        + _("If they are right, check this machine's clock: it signs the request.")
    )


def _regions(data: object) -> tuple[Region, ...]:
    if not isinstance(data, list):
        # No preview: the answer may hold tokens.
        raise MalformedResponse(
            _("'data' of the token answer is {type}, expected a list").format(
                type=type(data).__name__
            ),
            200,
            "",
        )
    regions = []
    for entry in data:
        if not isinstance(entry, dict):
            raise MalformedResponse(_("a region in the token answer is not an object"), 200, "")
        cluster_id = entry.get("clusterId")
        if isinstance(cluster_id, bool) or not isinstance(cluster_id, (str, int)):
            raise MalformedResponse(_("a region in the token answer has no 'clusterId'"), 200, "")
        region_id = str(cluster_id).strip()
        if region_id == PLATFORM_CLUSTER_ID:
            continue
        name = entry.get("clusterName")
        name = name.strip() if isinstance(name, str) and name.strip() else region_id
        token = entry.get("token")
        if token is not None:
            try:
                token = models.validate_token(token)
            except InvalidInput:
                raise MalformedResponse(
                    _("the token of region {name} ({region_id}) is not a usable token").format(
                        name=name, region_id=region_id
                    ),
                    200,
                    "",
                ) from None
        regions.append(Region(name, region_id, token))
    return tuple(regions)


def _is_region(entry: dict[str, Any], region: Region) -> bool:
    ids = {str(entry.get(key)).strip() for key in ("id", "clusterId") if entry.get(key) is not None}
    names = {entry.get(key) for key in ("name", "clusterName")}
    return region.id in ids or region.name in names


def _enabled(flag: object) -> bool:
    # Documented as a flag; some answers carry it as text.
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def _api_base(url: str) -> str:
    """An aiUrls entry as a base URL: the client appends /ai/openapi/..., so drop a final /ai."""
    text = url.strip().rstrip("/")
    if text.endswith("/ai"):
        text = text[: -len("/ai")]
    try:
        return models.validate_base_url(text)
    except InvalidInput as exc:
        raise MalformedResponse(
            _("the region's address is not usable ({problem})").format(problem=exc.message),
            200,
            "",
        ) from None


# ---------------------------------------------------------------------------------------------
# The whole flow


def request_account(settings: LoginSettings, ask: Ask | None = None) -> Account:
    """Sign in with the settings' credentials (asking for missing ones) and list the regions."""
    creds = credentials(settings, ask)
    with AccountApi(settings.login_url, settings.timeout) as api:
        return api.tokens(creds)


def open_region(account: Account, region: Region) -> Login:
    """Find the region's address (region discovery) and return the signed-in session."""
    if region.token is None:
        raise LoginError(_("region {region} has no token").format(region=region.label))
    with AccountApi(account.login_url, account.timeout) as api:
        base_url = api.region_address(region)
    return Login(account.user, region.name, region.id, base_url, account.login_url, region.token)


def sign_in(
    user: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    region: str | None = None,
    login_url: str | None = None,
    timeout: float | None = None,
    ask: Ask | None = None,
) -> Login:
    """Sign in and open a region: credentials from the arguments, the environment
    (``SCNET_USER``, ``SCNET_ACCESS_KEY``, ``SCNET_SECRET_KEY``) or the config file."""
    settings = config.resolve_login(
        user=user,
        access_key=access_key,
        secret_key=secret_key,
        login_url=login_url,
        timeout=timeout,
    )
    account = request_account(settings, ask)
    return open_region(account, account.choose(region))


def renew_token(token: str, *, login_url: str | None = None, timeout: float | None = None) -> str:
    """A renewed token in place of ``token``."""
    settings = config.resolve_login(login_url=login_url, timeout=timeout, keys=False)
    with AccountApi(settings.login_url, settings.timeout) as api:
        return api.renew(models.validate_token(token))


def token_state(
    token: str, *, login_url: str | None = None, timeout: float | None = None
) -> TokenState:
    """Whether the platform still accepts ``token`` (``tokens/state``)."""
    settings = config.resolve_login(login_url=login_url, timeout=timeout, keys=False)
    with AccountApi(settings.login_url, settings.timeout) as api:
        return api.state(models.validate_token(token))


def renewed(login: Login, token: str) -> Login:
    """The same session with a renewed token."""
    return replace(login, token=token)


def status_text(
    settings: Settings,
    current: Login | None,
    state: TokenState | None,
    saved: dict[str, Any],
    again: str,
) -> str:
    """Account, region, address and token state, as lines; never the token.

    ``saved`` is the config file's table: its account and region describe the token only if
    that token is the one in use.
    """
    if settings.token is None:
        return _("Not signed in: run {command}.").format(command=again)
    if saved.get("token") != settings.token:
        saved = {}
    lines = []
    user = current.user if current else saved.get("user")
    region = f"{current.region} ({current.region_id})" if current else saved.get("region")
    if user and region:
        lines += [
            _("Account: {user}").format(user=user),
            _("Region: {region}").format(region=region),
        ]
    else:
        lines.append(_("Token from: {source}").format(source=settings.token_source))
    lines.append(_("Address: {url}").format(url=settings.base_url))
    if state is not None:
        lines.append(
            _("Token: valid.")
            if state.valid
            else _("Token: not valid ({detail}); sign in again with {command}.").format(
                detail=state.detail, command=again
            )
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The notebook's region dropdown


def region_picker(account: Account, on_login: Callable[[Login], str]) -> Any:
    """A dropdown of the account's usable regions; choosing one opens it and calls ``on_login``.

    Standard ipywidgets only (imported now, not at ``%load_ext``). The tokens stay in Python:
    the widgets hold region names and ids only.
    """
    import ipywidgets as widgets

    by_id = {region.id: region for region in account.usable}
    dropdown = widgets.Dropdown(
        options=[(region.label, region.id) for region in account.usable],
        value=None,
        description=_("Region:"),
    )
    message = widgets.HTML(
        html.escape(
            _("Account {user}: choose a region.").format(user=account.user)
            + (" " + account.unusable_note() if account.unusable_note() else "")
        )
    )
    language = i18n.current()  # a choice made later still speaks the session's language

    def chosen(change: dict[str, Any]) -> None:
        region = by_id.get(change["new"])
        if region is None:
            return
        dropdown.disabled = True
        try:
            text = on_login(open_region(account, region))
        except ScnetError as exc:
            text = exc.user_message()
        finally:
            dropdown.disabled = False
        message.value = "<br>".join(html.escape(line) for line in text.splitlines())

    def chosen_in_language(change: dict[str, Any]) -> None:
        with i18n.using(language):
            chosen(change)

    dropdown.observe(chosen_in_language, names="value")
    return widgets.VBox([dropdown, message])


# ---------------------------------------------------------------------------------------------
# The ``scnet login`` command


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``scnet login`` on ``parser`` (a sub-command's parser)."""
    parser.add_argument(
        "--region",
        metavar="NAME_OR_ID",
        help=_(
            "region to use, by name, a unique part of it, or id (needed when the account "
            "has several)"
        ),
    )
    parser.add_argument(
        "--user", metavar="NAME", help=_("account name (default: SCNET_USER or the config file)")
    )
    parser.add_argument(
        "--secret-key-stdin",
        action="store_true",
        help=_("read the secret key from the first line of standard input"),
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help=_("show the saved account, region and address, and whether the token is valid"),
    )
    parser.add_argument(
        "--renew", action="store_true", help=_("renew the saved token instead of signing in")
    )
    parser.add_argument("--json", action="store_true", help=_("print the result as JSON"))


def login_command(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``scnet login`` with parsed ``args``; 0 done, 1 refused or failed, 2 usage error.

    Signing in saves the token, address, account and region (never a key) to the user config
    file, readable by its owner only; later commands use them from there.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        if args.status and (args.renew or args.region or args.user or args.secret_key_stdin):
            raise InvalidInput(_("--status takes no other option but --json"))
        if args.renew and (args.region or args.user or args.secret_key_stdin):
            raise InvalidInput(_("--renew keeps the region and needs no keys; give it alone"))
        if args.status:
            return _cli_status(args.json, stdout)
        if args.renew:
            settings = config.resolve()
            token = renew_token(settings.require_token())
            path = config.save_config({"token": token})
            _cli_print(args.json, stdout, {"renewed": True, "saved_to": str(path)})
            return 0
        secret_key = _read_secret(stdin) if args.secret_key_stdin else None
        settings_in = config.resolve_login(user=args.user, secret_key=secret_key)
        ask = _terminal_ask if stdin.isatty() else None
        account = request_account(settings_in, ask)
        signed = open_region(account, account.choose(args.region))
        path = config.save_config(signed.saved_settings())
        result = {**signed.to_dict(), "saved_to": str(path)}
        saved = _("Saved to {path}.").format(path=path)
        _cli_print(args.json, stdout, result, f"{signed.describe()}\n{saved}")
        return 0
    except (InvalidInput, ConfigError) as exc:
        print(f"scnet login: {exc.user_message()}", file=stderr)
        return 2
    except ScnetError as exc:
        print(f"scnet login: {exc.user_message()}", file=stderr)
        return 1


def _cli_status(as_json: bool, stdout: TextIO) -> int:
    settings = config.resolve()
    state = token_state(settings.token) if settings.token else None
    saved = config.read_config_file()
    if as_json:
        shown = {
            "signed_in": settings.token is not None,
            "user": saved.get("user"),
            "region": saved.get("region"),
            "base_url": settings.base_url,
            "token_source": settings.token_source,
            "token_valid": state.valid if state else None,
        }
        print(json.dumps(shown, ensure_ascii=False), file=stdout)
    else:
        print(status_text(settings, None, state, saved, "scnet login"), file=stdout)
    return 0 if state is not None and state.valid else 1


def _cli_print(as_json: bool, stdout: TextIO, result: dict[str, Any], text: str = "") -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False), file=stdout)
    else:
        print(text or _("Token renewed and saved."), file=stdout)


def _read_secret(stdin: TextIO) -> str:
    line = stdin.readline()
    if not line.strip():
        raise InvalidInput(_("--secret-key-stdin: standard input is empty"))
    return models.validate_secret_key(line)


def _terminal_ask(label: str, hidden: bool) -> str:
    try:
        prompt = _("SCNet {label}: ").format(label=label)
        return getpass.getpass(prompt) if hidden else input(prompt)
    except EOFError:
        raise ConfigError(_("no SCNet {label} given").format(label=label)) from None
