"""ScnetClient: the platform's notebook endpoints under a region's AI address (``/ai/...``).

No HTML, no prompts, no progress display: inputs are checked before anything is sent, every
request goes through the client's transport, answers become :mod:`scnet_magic.models`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import account, config, endpoints, i18n, lifecycle, local, readiness, validation
from .config import Settings
from .endpoints import Endpoint
from .errors import (
    ApiError,
    HttpError,
    InvalidInput,
    MalformedResponse,
    ScnetError,
    Sentences,
    TransportError,
)
from .i18n import N_, Message
from .models import (
    InstanceProgress,
    Notebook,
    NotebookList,
    Readiness,
    ServiceUrl,
    StartResult,
    StopResult,
    TokenState,
    WaitProgress,
)
from .transport import (
    CONNECTION_REFUSED,
    HoldsTransport,
    Request,
    Transport,
    optional_text,
    preview_json,
    wrong_type,
)
from .validation import StartRequest

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # the documented default; larger sizes are undocumented
# A list that has not ended by then never will: a server that answers every page full and a
# total no list reaches would otherwise be read for ever (each answer is limited in size, the
# list is limited here).
MAX_PAGES = 50
MAX_RECORDS = MAX_PAGES * PAGE_SIZE
MAY_BE_RUNNING = N_(
    "The command may already be running: check the service's address (%scnet_url, scnet url "
    "or service_url()) before starting again; a second start runs it twice."
)


class ScnetClient(HoldsTransport):
    """A client for the SCNet notebook OpenAPI.

    Settings not given come from the environment or the config file; ``settings`` gives them
    all, already resolved. The token appears in no repr, message or log. ``transport`` sends
    the requests (by default over HTTP; ``MockTransport`` answers in memory). ``ac_url``: the
    platform host, where booting goes. ``language`` ("en", "zh"): the language messages are
    written in from then on, as ``%config ScnetMagics.language`` sets it for the magics.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        *,
        retries: int = 2,
        language: str | None = None,
        ac_url: str | None = None,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        token = validation.hidden(token)  # not shown by a traceback's variables
        if language is not None:
            i18n.set_language(validation.validate_language(language))
        if settings is None:
            settings = config.resolve(
                token=token, base_url=base_url, timeout=timeout, ac_url=ac_url
            )
        elif (base_url, token, timeout, ac_url) != (None, None, None, None):
            raise TypeError("give settings, or base_url, token, timeout and ac_url: not both")
        self.__token = settings.require_token()
        self.settings = settings
        self.base_url = settings.base_url
        self.timeout = settings.timeout
        super().__init__(transport, settings.timeout, retries)

    def __repr__(self) -> str:
        return f"ScnetClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    # -- API -------------------------------------------------------------------------------

    def start_service(
        self, notebook_id: str | int, port: int | str, command: str | None = None
    ) -> StartResult:
        """Run ``command`` in the instance and open an external address to ``port``; sent
        exactly once (starting is not idempotent)."""
        return self.send_start(validation.start_request(notebook_id, port, command))

    def send_start(self, request: StartRequest) -> StartResult:
        """Send a start request already checked (see :func:`validation.start_request`)."""
        try:
            envelope = self._call(endpoints.START, body=request.body())
            return self._start_result(request, envelope)
        except MalformedResponse as exc:
            # A start answered, but not as documented: it may have run all the same.
            exc.with_hint(Sentences(MAY_BE_RUNNING, exc.hint_message))
            raise

    def _start_result(self, request: StartRequest, envelope: dict[str, Any]) -> StartResult:
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise wrong_type(N_("'data' is {type}, expected an object"), data)
        exec_success = data.get("execSuccess")
        if not isinstance(exec_success, bool):
            raise wrong_type(N_("'execSuccess' is {type}, expected true or false"), exec_success)
        error_msg = optional_text(data.get("errorMsg"))
        output = optional_text(data.get("output"))
        url = validation.extract_url(error_msg)
        if url is None:
            found = validation.extract_url(output)
            # Command output usually names the address the service listens on inside the
            # instance (http://0.0.0.0:7860); that is not the external address.
            url = found if found and not validation.is_local_url(found) else None
        if url is None:
            try:
                url = self.service_url(request.notebook_id).url
            except ScnetError as exc:  # the start itself succeeded: no URL is no failure
                log.debug("service URL query after start failed: %s", exc)
        return StartResult(
            code="0",
            msg=str(envelope.get("msg") or ""),
            exec_success=exec_success,
            error_msg=error_msg,
            output=output,
            url=url,
            notebook_id=request.notebook_id,
            port=request.port,
            raw=envelope,
            command=request.command,
        )

    def service_url(self, notebook_id: str | int) -> ServiceUrl:
        """The custom service's external address and status (endpoint 2)."""
        checked_id = validation.validate_notebook_id(notebook_id)
        envelope = self._call(endpoints.SERVICE_URL, params={"notebookId": checked_id})
        data = envelope.get("data")
        # The answer's shape is not documented: an object with url/status, or a bare URL.
        if data is None or isinstance(data, str):
            data = {"url": data}
        if not isinstance(data, dict):
            raise wrong_type(N_("'data' is {type}, expected an object or a URL"), data)
        if data and not {"url", "status"} & data.keys():
            # Not what any source shows: say so rather than "no address yet".
            keys = ", ".join(sorted(map(str, data))[:8])
            raise MalformedResponse(
                Message(N_("'data' has no 'url' or 'status' (it has: {keys})"), keys=keys),
                200,
                preview_json(data),
            ).at(str(endpoints.SERVICE_URL))
        url = validation.extract_url(data.get("url"))
        status = data.get("status")
        return ServiceUrl(checked_id, url, None if status is None else str(status), envelope)

    def list_notebooks(self, status: str | None = None, name: str | None = None) -> NotebookList:
        """Every notebook instance (all pages), optionally filtered by status or name."""
        params: dict[str, str] = {"size": str(PAGE_SIZE)}
        if status is not None:
            params["notebookStatus"] = validation.validate_status(status)
        if name is not None:
            params["notebookName"] = name
        records = NotebookList()
        for page in range(1, MAX_PAGES + 1):
            envelope = self._call(endpoints.LIST, params={**params, "page": str(page)})
            data = envelope.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("records"), list):
                raise MalformedResponse(N_("'data' has no 'records' list"), 200, preview_json(data))
            batch = [r for r in data["records"] if isinstance(r, dict)]
            records.extend(NotebookList.from_records(batch))
            total = data.get("total")
            if not batch or (isinstance(total, int) and len(records) >= total):
                return records
            if len(records) >= MAX_RECORDS:
                break
        raise MalformedResponse(
            Message(
                N_(
                    "the notebook list did not end after {pages} pages ({records} records read; "
                    "the answer's total: {total})"
                ),
                pages=page,
                records=len(records),
                total=preview_json(total),
            ),
            200,
            "",
            N_("Narrow the list with a status or a name (--status, --name)."),
        ).at(str(endpoints.LIST))

    # -- the instance around the service ---------------------------------------------------

    def notebook(self, notebook_id: str | int) -> Notebook:
        """The instance's detail: status, custom port and command (``customsizePort``)."""
        checked_id = validation.validate_notebook_id(notebook_id)
        envelope = self._call(endpoints.DETAIL, params={"notebookId": checked_id}, named=True)
        return lifecycle.notebook_from(envelope, checked_id, str(endpoints.DETAIL))

    def boot_notebook(self, notebook_id: str | int) -> dict[str, Any]:
        """Ask the platform host to boot a stopped instance, exactly once; its answer, as it
        came. Follow the boot with :meth:`wait_for_notebook`."""
        checked_id = validation.validate_notebook_id(notebook_id)
        ac_url = self.settings.ac_url
        boot = endpoints.BOOT
        endpoint = f"{boot.method} {ac_url}{boot.path}"
        request = Request.to(boot, ac_url, self.__token, body={"notebookId": checked_id})
        try:
            return self.transport.call(request)
        except (HttpError, ApiError) as exc:
            # A 404 or a redirect here most likely means SCNET_AC_URL is not the platform.
            raise account.address_hint(exc, ac_url, boot.host).at(endpoint) from None
        except ScnetError as exc:
            raise exc.at(endpoint) from None

    def stop_notebook(self, notebook_id: str | int, save_env: bool = True) -> StopResult:
        """Stop an instance (every process in it ends); ``save_env`` keeps its packages and
        files for the next start. Already stopped is not an error (``already_stopped``)."""
        checked_id = validation.validate_notebook_id(notebook_id)
        if not isinstance(save_env, bool):
            raise InvalidInput(N_("save_env must be True or False"))
        body = {"notebookId": checked_id, "saveEnv": save_env}
        try:
            envelope = self._call(endpoints.STOP, body=body, named=True)
        except ApiError as exc:
            if not lifecycle.is_already_stopped(exc):
                raise
            return lifecycle.stop_result(None, checked_id, save_env, refused=exc)
        return lifecycle.stop_result(envelope, checked_id, save_env)

    def wait_for_notebook(
        self,
        notebook_id: str | int,
        status: str = "Running",
        timeout: float = lifecycle.DEFAULT_INSTANCE_TIMEOUT,
        on_progress: Callable[[InstanceProgress], None] | None = None,
        *,
        since: float | None = None,
    ) -> Notebook:
        """Look at the instance's detail until its status is ``status``; the last record.
        ``Failed`` or ``timeout`` seconds passing raise :class:`InstanceError`; ``on_progress``
        gets an ``InstanceProgress`` after every look that did not end the wait."""
        checked_id = validation.validate_notebook_id(notebook_id)
        wanted = validation.validate_status(status)
        seconds = validation.validate_timeout(timeout)
        return lifecycle.wait_for_status(
            lambda: self.notebook(checked_id),
            checked_id,
            wanted,
            seconds,
            on_progress=on_progress,
            since=since,
        )

    # -- signing in -------------------------------------------------------------------------

    @classmethod
    def login(
        cls,
        user: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        region: str | None = None,
        login_url: str | None = None,
        ac_url: str | None = None,
        timeout: float | None = None,
        transport: Transport | None = None,
    ) -> ScnetClient:
        """Sign in with an access key pair; a client for the region's token and address.
        Credentials not given come from the environment or the config file; ``region`` (a
        name, part of one, or an id) is needed when the account has several."""
        secret_key = validation.hidden(secret_key)  # not shown by a traceback's variables
        signed = account.sign_in(
            user,
            access_key,
            secret_key,
            region=region,
            login_url=login_url,
            ac_url=ac_url,
            timeout=timeout,
            transport=transport,
        )
        settings = config.resolve(
            base_url=signed.base_url, token=signed.token, timeout=timeout, ac_url=signed.ac_url
        )
        # Its renewal then picks this region's entry from an answer listing several.
        settings = replace(settings, token_region=signed.region_id)
        return cls(settings=settings, transport=transport)

    def renew_token(self, ac_url: str | None = None) -> None:
        """Replace this client's token with a renewed one, asked at ``ac_url`` (by default the
        settings')."""
        self.__token = account.renew_token(
            self.__token,
            ac_url=ac_url or self.settings.ac_url,
            timeout=self.timeout,
            region=self.settings.token_region,
            transport=self.transport,
        )

    def token_state(self, ac_url: str | None = None) -> TokenState:
        """Whether the platform (at ``ac_url``, by default the settings') still accepts this
        client's token."""
        return account.token_state(
            self.__token,
            ac_url=ac_url or self.settings.ac_url,
            timeout=self.timeout,
            transport=self.transport,
        )

    def wait_until_ready(
        self,
        result_or_url: StartResult | str,
        timeout: float = config.DEFAULT_WAIT,
        *,
        command: str | None = None,
        since: float | None = None,
        on_progress: Callable[[WaitProgress], None] | None = None,
        guard: readiness.GuardCheck | None = None,
    ) -> Readiness:
        """Wait until the service's external URL answers with something other than 502/503/504
        (with ``guard``, until that guard says the service behind it is up); the start is
        never sent again. ``command`` (by default the result's) lets the error name its log
        file; ``since``, when the start was sent (``time.monotonic()``), tells its log and
        process from older ones (the timeout counts from now: the start request's own seconds
        are not taken from it). Raises :class:`NotReady` after ``timeout`` seconds.

        Given a :class:`StartResult`, the :class:`Readiness` carries it marked ready as
        ``.result`` (``res = client.wait_until_ready(res).result``).
        """
        seconds = validation.validate_timeout(timeout)
        result = result_or_url if isinstance(result_or_url, StartResult) else None
        url = result_or_url.url if isinstance(result_or_url, StartResult) else result_or_url
        if url is None:
            raise ScnetError(
                N_("the platform gave no external URL to wait for"),
                N_("Ask for it with service_url(notebook_id) once the service is up."),
            )
        port = result.port if result else None
        command = command if command is not None or result is None else result.command
        ended = None
        if result is not None and command:
            # Where the command runs on this machine, a command that ended ends the wait.
            started = since if since is not None else time.monotonic()
            ended = local.CommandWatch(
                command, started, here=local.runs_here(url), output=result.output
            ).ended
        ready = readiness.wait_until_ready(
            url,
            seconds,
            on_progress=on_progress,
            hint=readiness.not_ready_hint(command, port),
            guard=guard,
            # The kernel usually runs in the instance, where the service listens.
            local_port=port,
            ended=ended,
        )
        return replace(ready, result=result.marked_ready(ready.elapsed)) if result else ready

    # -- HTTP ------------------------------------------------------------------------------

    def _call(
        self,
        endpoint: Endpoint,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        named: bool = False,
    ) -> dict[str, Any]:
        """Send one request to the base URL, with the token, and return the envelope; ``named``:
        its errors name the endpoint (the instance calls, whose answers are not documented)."""
        request = Request.to(endpoint, self.base_url, self.__token, params=params, body=body)
        try:
            return self.transport.call(request)
        except ScnetError as exc:
            default = self.settings.base_url_default
            if isinstance(exc, ApiError) and exc.code in account.REFUSED_TOKEN_CODES:
                if default:
                    exc.with_hint(self._default_host_hint())
                exc.add_hint(self._sources_note())
            elif isinstance(exc, TransportError):
                # A sandbox that has stopped, or an old address saved or exported: say which.
                reason = exc.values.get("reason")
                if isinstance(reason, Message) and reason.id == CONNECTION_REFUSED:
                    exc.add_hint(self._sources_note())
            elif isinstance(exc, HttpError) and exc.status in (401, 403, 404) and default:
                exc.with_hint(self._default_host_hint())
            if named:
                raise exc.at(str(endpoint)) from None
            raise

    def _sources_note(self) -> Message:
        """Where the token and the address of a refused call came from."""
        return Message(
            N_("The token came from {token_source}, the address from {address_source}."),
            token_source=self.settings.token_source or "?",
            address_source=self.settings.base_url_source or Message(N_("the default base URL")),
        )

    def _default_host_hint(self) -> Message:
        """Why a region's token was refused when no base URL was set (the example host)."""
        return Message(
            N_(
                "This went to {url}, the default base URL (the documentation's example host): "
                "sign in with scnet login or %scnet_login, which finds your region's address, "
                "or set SCNET_BASE_URL to it."
            ),
            url=self.base_url,
        )
