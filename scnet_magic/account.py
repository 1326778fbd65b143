"""Signing in with an access key pair, and the platform's account calls.

The login host gives one token per region for a signed request (the secret key only signs:
it is never sent, and kept nowhere after signing in); the platform host (``/ac/...``) finds a
region's AI address, renews and checks a **region's** token (see :mod:`scnet_magic.endpoints`).
No prompts and no HTML here: a front end hands in an ``ask`` callable for missing credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import config, endpoints, server_text, validation
from .config import LoginSettings, Settings
from .endpoints import Endpoint, Host
from .errors import (
    ApiError,
    ConfigError,
    HttpError,
    InvalidInput,
    LoginError,
    MalformedResponse,
    ScnetError,
    Sentences,
)
from .i18n import N_, Message, _
from .models import Account, Login, Menu, Region, TokenState
from .transport import HoldsTransport, Request, Transport, wrong_type

# The token endpoint lists a platform-level token under this id; it is not a region.
PLATFORM_CLUSTER_ID = "0"
VALID_STATE = "token is valid"
# Codes with which the platform refuses a token it no longer accepts.
REFUSED_TOKEN_CODES = frozenset({"10008", "10009"})

KEYS_HINT = N_(
    "Check the account name, access key and secret key (SCNet console: personal center → "
    "access control)."
)
NO_NOTEBOOK_API_HINT = N_(
    "This region's AI address serves no notebook API (seen on regions whose gateway serves "
    "only HPC); choose another region, or ask SCNet support which address to use."
)
CLOCK_HINT = N_(
    "The request is signed with this machine's clock and refused when the clock is minutes "
    "off; set the clock (NTP) and sign in again."
)

# Asks for a missing credential: (label, hidden) -> the answer.
Ask = Callable[[str, bool], str]


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
    ("user", N_("account name"), False, validation.validate_account_name),
    ("access_key", N_("access key"), True, validation.validate_access_key),
    ("secret_key", N_("secret key"), True, validation.validate_secret_key),
)


def credentials(settings: LoginSettings, ask: Ask | None = None) -> Credentials:
    """The account name and key pair from the settings; missing ones are asked for, if possible."""
    values: dict[str, str] = {}
    for name, label, hidden, check in _CREDENTIALS:
        value = getattr(settings, name)
        if value is None:
            if ask is None:
                raise ConfigError(
                    N_("no SCNet {label} is set"),
                    Message(
                        N_('Set {variable}, or put {name} = "…" in the config file ({path}).'),
                        variable=config.ENV_VARS[name],
                        name=name,
                        path=config.config_path(),
                    ),
                    label=Message(label),
                )
            value = check(ask(_(label), hidden))
        values[name] = value
    return Credentials(**values)


# Every account call may be sent again: none of them changes anything but the tokens.
_RESEND = N_("Try again: asking for a token again does no harm.")


class AccountApi(HoldsTransport):
    """The account calls: tokens at the login address, ``/ac/...`` at the platform address."""

    def __init__(
        self,
        login_url: str = config.DEFAULT_LOGIN_URL,
        timeout: float = config.DEFAULT_TIMEOUT,
        *,
        ac_url: str = config.DEFAULT_AC_URL,
        retries: int = 2,
        transport: Transport | None = None,
    ) -> None:
        self.login_url = validation.validate_login_url(login_url)
        self.ac_url = validation.validate_ac_url(ac_url)
        self.timeout = timeout
        super().__init__(transport, timeout, retries)

    def tokens(self, creds: Credentials) -> Account:
        """Sign the token request and return the account's regions, at least one usable."""
        timestamp = str(int(time.time()))
        try:
            # The secret key is never sent; hidden all the same, should an answer hold it (as
            # a Secret: a verbose traceback shows the variables of this call's frames).
            hide: dict[str, str] = {validation.Secret(creds.secret_key): "secret key"}
            envelope = self._call(endpoints.TOKENS, creds.headers(timestamp), hide)
        except ApiError as exc:
            if exc.status == 404:
                raise  # not a refusal: no token endpoint at that address
            raise ApiError(
                exc.code,
                exc.msg,
                exc.status,
                prefix=N_("sign-in refused: {problem}"),
                hint=_refusal_hint(exc),
            ) from None
        regions = _regions(envelope.get("data"))
        if not regions:
            raise LoginError(
                N_("the platform listed no region for account {user}"),
                N_("Check the account in the SCNet console."),
                user=creds.user,
            )
        account = Account(creds.user, self.login_url, self.timeout, regions, self.ac_url)
        if not account.usable:
            raise LoginError(
                N_(
                    "no region of account {user} has a token: the account may be suspended "
                    "(for example for an unpaid balance)"
                ),
                N_("Check the account in the SCNet console, or contact SCNet support."),
                user=creds.user,
            )
        return account

    def region_address(self, region: Region, token: str) -> str:
        """The base URL of the region's notebook APIs: its first usable ``aiUrls`` entry."""
        data = self._call(endpoints.CENTER, {"token": token}).get("data")
        listed = region_entries(data)
        if listed is None:
            message = N_("'data' of the region list is {type}, expected an object or a list")
            raise wrong_type(message, data, quoted=False)
        # With a region's token the list should hold that region; if it names none of them,
        # take the entries in the order given.
        same = [entry for entry in listed if {region.id, region.name} & set(_region_names(entry))]
        found = first_ai_url(same or listed)
        if found is not None:
            return api_base(found[1])
        raise LoginError(
            N_("region {region} has no enabled notebook API address (aiUrls)"),
            N_(
                "Its notebook service may be closed or under maintenance; try again later or "
                "choose another region."
            ),
            region=region.label,
        )

    def renew(self, token: str, region: str | None = None) -> str:
        """A new token in place of ``token`` (of ``region``, an id or a name, when known)."""
        try:
            envelope = self._call(endpoints.RENEW, {"token": token})
        except ApiError as exc:
            if exc.code in REFUSED_TOKEN_CODES:
                exc.with_hint(N_("The token can no longer be renewed; sign in again."))
            raise
        candidate = renewed_token(envelope.get("data"), region)
        if candidate == server_text.hidden("token"):
            # The answer gave back the token it was sent (hidden as every echo of it is): the
            # platform keeps it valid.
            return validation.validate_token(token)
        try:
            return validation.validate_token(candidate)
        except InvalidInput:
            # No preview: whatever came back may be part of a token.
            raise MalformedResponse(N_("the renewal answer holds no token"), 200, "") from None

    def state(self, token: str) -> TokenState:
        """Whether the platform still accepts ``token``."""
        try:
            envelope = self._call(endpoints.STATE, {"token": token})
        except ApiError as exc:
            if exc.code in REFUSED_TOKEN_CODES:
                return TokenState(False, exc.message)
            raise
        data = envelope.get("data")
        detail = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return TokenState(detail.strip().lower() == VALID_STATE, detail)

    def _call(
        self, endpoint: Endpoint, headers: dict[str, str], secrets: dict[str, str] | None = None
    ) -> dict[str, Any]:
        address = self.login_url if endpoint.host is Host.LOGIN else self.ac_url
        request = Request(
            endpoint.method,
            address + endpoint.path,
            headers,
            address_name=endpoint.host.address_name,
            resend_hint=_RESEND,
            secrets=secrets or {},
        )
        try:
            return self.transport.call(request)
        except (HttpError, ApiError) as exc:
            raise address_hint(exc, address, endpoint.host) from None


def address_hint(exc: HttpError | ApiError, url: str, host: Host) -> HttpError | ApiError:
    """The same error, with a hint naming the address setting when that is the likely cause: a
    redirect, or a 404 (with or without an envelope: another host's endpoint is unknown)."""
    if not (exc.status == 404 or 300 <= exc.status < 400):
        return exc
    hint = N_("Check the address {url} (set with {variable}).")
    return exc.with_hint(Message(hint, url=url, variable=host.variable))


def region_entries(data: object) -> list[dict[str, Any]] | None:
    """The region entries of a region discovery answer's ``data``; None when it is neither an
    object nor a list. The page documents a list; clients that run against the platform
    receive one object (lql341/scnet-hpc scripts/scnet_sdk/client.py). Accept both."""
    entries = [data] if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return None
    return [entry for entry in entries if isinstance(entry, dict)]


def first_ai_url(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], str] | None:
    """The first entry with a usable ``aiUrls`` address (``{"url": …, "enable": …}``; one
    without ``enable`` is usable: get-center-info.html checks it only among several), and
    that address."""
    for entry in entries:
        addresses = entry.get("aiUrls")
        for item in addresses if isinstance(addresses, list) else ():
            if not isinstance(item, dict):
                continue
            url = item.get("url")
            # ``enable`` is documented as a flag; some answers carry it as text.
            enabled = str(item.get("enable", True)).strip().lower() == "true"
            if enabled and isinstance(url, str) and url.strip():
                return entry, url
    return None


def renewed_token(data: object, region: str | None = None) -> object:
    """The token in a renewal answer: a bare string, an object with ``token``, or a list of
    either (renewal-token.html: "区域信息列表"). From a list: never the platform's own entry;
    the entry of ``region`` (an id or a name), else the only one. Several regions and none
    known is a :class:`LoginError`: a guess could save a token this region would refuse.
    """
    if not isinstance(data, list):
        return data.get("token") if isinstance(data, dict) else data
    entries = [entry for entry in data if isinstance(entry, (str, dict)) and not _platform(entry)]
    names = [_region_names(entry) if isinstance(entry, dict) else () for entry in entries]
    if region is not None:
        for entry, its_names in zip(entries, names, strict=True):
            if region.strip() in its_names:
                return renewed_token(entry)
    if len(entries) <= 1 or not all(names):
        # One entry, or entries that do not name their region: the first is all there is.
        return renewed_token(entries[0]) if entries else None
    shown = ", ".join(its_names[-1] for its_names in names)
    if region is None:
        message = N_(
            "the renewal answer lists the tokens of several regions ({regions}), and this "
            "token's region is not known"
        )
    else:
        message = N_(
            "the renewal answer lists the tokens of several regions ({regions}), none of them "
            "region {region}"
        )
    raise LoginError(
        message,
        N_(
            "Sign in again, naming the region (scnet login --region NAME, "
            "%scnet_login --region NAME)."
        ),
        regions=shown,
        region=region,
    )


def _platform(entry: object) -> bool:
    """The platform's own entry in a list of region entries (clusterId 0)."""
    return isinstance(entry, dict) and str(entry.get("clusterId")).strip() == PLATFORM_CLUSTER_ID


def _region_names(entry: dict[str, Any]) -> tuple[str, ...]:
    """How an entry names its region: its ids, then its names (the last as a message shows it)."""
    names = [str(entry[key]).strip() for key in ("clusterId", "id") if entry.get(key) is not None]
    for key in ("name", "clusterName"):
        name = entry.get(key)
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return tuple(names)


def _refusal_hint(exc: ApiError) -> str | Message:
    text = exc.msg.casefold()
    if "timestamp" in text or "时间" in text:
        return CLOCK_HINT
    if any(word in text for word in ("signature", "签名", "accesskey", "密钥", "user", "用户")):
        return KEYS_HINT
    if exc.code in ("10001", "10007") and exc.info is not None:
        return exc.info.hint
    return Sentences(
        KEYS_HINT, N_("If they are right, check this machine's clock: it signs the request.")
    )


def _regions(data: object) -> tuple[Region, ...]:
    if not isinstance(data, list):
        # No preview: the answer may hold tokens.
        message = N_("'data' of the token answer is {type}, expected a list")
        raise wrong_type(message, data, quoted=False)
    regions = []
    for entry in data:
        if not isinstance(entry, dict):
            raise MalformedResponse(N_("a region in the token answer is not an object"), 200, "")
        cluster_id = entry.get("clusterId")
        if isinstance(cluster_id, bool) or not isinstance(cluster_id, (str, int)):
            raise MalformedResponse(N_("a region in the token answer has no 'clusterId'"), 200, "")
        region_id = str(cluster_id).strip()
        if region_id == PLATFORM_CLUSTER_ID:
            continue
        name = entry.get("clusterName")
        name = name.strip() if isinstance(name, str) and name.strip() else region_id
        token = entry.get("token")
        if token is not None:
            try:
                token = validation.validate_token(token)
            except InvalidInput:
                raise MalformedResponse(
                    Message(
                        N_("the token of region {name} ({region_id}) is not a usable token"),
                        name=name,
                        region_id=region_id,
                    ),
                    200,
                    "",
                ) from None
        regions.append(Region(name, region_id, token))
    return tuple(regions)


def api_base(url: str) -> str:
    """An aiUrls entry as a base URL: the client appends /ai/openapi/..., so drop a final /ai."""
    try:
        return validation.validate_base_url(url.strip().rstrip("/").removesuffix("/ai"))
    except InvalidInput as exc:
        raise MalformedResponse(
            Message(N_("the region's AI address is not usable ({problem})"), problem=exc),
            200,
            "",
        ) from None


def check_notebook_api(transport: Transport, base_url: str, token: str, region: str) -> None:
    """Fail with a clear message when ``base_url`` serves no notebook API (some regions list
    an ``aiUrls`` host that answers 404 for every ``/ai/openapi/v2/...`` path): said at
    sign-in, while the user can still choose another region, not at the first start."""
    try:
        transport.call(
            Request.to(
                endpoints.LIST,
                base_url,
                token,
                params={"page": "1", "size": "1"},
                address_name=N_("the region's notebook API address (aiUrls of region discovery)"),
            )
        )
    except (HttpError, ApiError) as exc:
        # With or without an envelope: gateways differ in how they say "no such path".
        if exc.status != 404:
            raise
        raise LoginError(
            N_("the notebook API address {url} of region {region} answered 404 Not Found"),
            NO_NOTEBOOK_API_HINT,
            url=base_url,
            region=region,
        ) from None


# ---------------------------------------------------------------------------------------------
# The whole flow


def request_account(
    settings: LoginSettings, ask: Ask | None = None, *, transport: Transport | None = None
) -> Account:
    """Sign in with the settings' credentials (asking for missing ones) and list the regions."""
    creds = credentials(settings, ask)
    with AccountApi(
        settings.login_url, settings.timeout, ac_url=settings.ac_url, transport=transport
    ) as api:
        return api.tokens(creds)


def open_region(account: Account, region: Region, *, transport: Transport | None = None) -> Login:
    """Find the region's address (region discovery), check that it serves the notebook APIs
    (the first notebook call), and return the signed-in session."""
    if region.token is None:
        raise LoginError(N_("region {region} has no token"), region=region.label)
    with AccountApi(
        account.login_url, account.timeout, ac_url=account.ac_url, transport=transport
    ) as api:
        base_url = api.region_address(region, region.token)
        check_notebook_api(api.transport, base_url, region.token, region.label)
    return Login(
        account.user,
        region.name,
        region.id,
        base_url,
        account.login_url,
        region.token,
        ac_url=account.ac_url,
    )


def sign_in(
    user: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    region: str | None = None,
    login_url: str | None = None,
    ac_url: str | None = None,
    timeout: float | None = None,
    ask: Ask | None = None,
    menu: Menu | None = None,
    transport: Transport | None = None,
) -> Login:
    """Sign in and open a region: credentials from the arguments, the environment
    (``SCNET_USER``, ``SCNET_ACCESS_KEY``, ``SCNET_SECRET_KEY``) or the config file; ``ask``
    prompts for missing ones, and ``menu`` picks among several regions when none is named."""
    secret_key = validation.hidden(secret_key)  # not shown by a traceback's variables
    settings = config.resolve_login(
        user=user,
        access_key=access_key,
        secret_key=secret_key,
        login_url=login_url,
        ac_url=ac_url,
        timeout=timeout,
    )
    account = request_account(settings, ask, transport=transport)
    return open_region(account, account.choose(region, menu), transport=transport)


def renew_token(
    token: str,
    *,
    ac_url: str | None = None,
    timeout: float | None = None,
    region: str | None = None,
    transport: Transport | None = None,
) -> str:
    """A renewed token in place of ``token``; ``region`` (its id or name), when known, picks
    its entry from an answer that lists several regions."""
    with _platform_api(ac_url, timeout, transport) as api:
        return api.renew(validation.validate_token(token), region)


def token_state(
    token: str,
    *,
    ac_url: str | None = None,
    timeout: float | None = None,
    transport: Transport | None = None,
) -> TokenState:
    """Whether the platform still accepts ``token`` (``tokens/state``)."""
    with _platform_api(ac_url, timeout, transport) as api:
        return api.state(validation.validate_token(token))


def renew_in_force(settings: Settings, region: str | None = None) -> str:
    """A renewed token in place of the one in force; ``region`` (its id or name), else the
    one the config file names beside it, picks its entry from an answer listing several."""
    return renew_token(
        settings.require_token(),
        ac_url=settings.ac_url,
        timeout=settings.timeout,
        region=region or settings.token_region,
    )


def state_in_force(settings: Settings) -> TokenState | None:
    """Whether the platform accepts the token in force; None when no token is set."""
    if settings.token is None:
        return None
    return token_state(settings.token, ac_url=settings.ac_url, timeout=settings.timeout)


def _platform_api(
    ac_url: str | None, timeout: float | None, transport: Transport | None
) -> AccountApi:
    """The platform host's calls at the address and timeout given, else looked up."""
    if ac_url is None or timeout is None:
        settings = config.resolve_login(ac_url=ac_url, timeout=timeout, keys=False)
        ac_url, timeout = settings.ac_url, settings.timeout
    return AccountApi(timeout=timeout, ac_url=ac_url, transport=transport)


def pick_region(
    account: Account, read_line: Callable[[str], str], say: Callable[[str], None]
) -> Region:
    """A numbered list of the account's regions and a choice typed at a terminal, rather than
    an error once the keys were typed. ``read_line`` shows a prompt and returns the line
    typed ("" at the end of input); ``say`` shows a line."""
    usable = account.usable
    say(_("Account {user} has {count} regions:").format(user=account.user, count=len(usable)))
    for number, region in enumerate(usable, 1):
        say(f"  {number}. {region.label}")
    note = account.unusable_note()
    if note:
        say(note)
    while True:
        answer = read_line(_("Region number (1-{count}): ").format(count=len(usable)))
        if not answer:
            raise ConfigError(N_("no region chosen"), N_("Give --region NAME_OR_ID."))
        text = answer.strip()
        if text.isdigit() and 1 <= int(text) <= len(usable):
            return usable[int(text) - 1]
        try:
            return account.choose(text)  # a name or an id works too
        except ScnetError as exc:
            say(exc.user_message())
