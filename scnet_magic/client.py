"""ScnetClient: the platform's notebook endpoints under a region's AI address (``/ai/...``).

No front-end code lives here: no HTML, no prompts, no progress display. Every request goes
through the client's :class:`~scnet_magic.transport.Transport` (deadline, size limit, no
redirects, one place where failures get their names); inputs are checked by
:mod:`scnet_magic.validation` before anything is sent; answers become the result types of
:mod:`scnet_magic.models`.
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
    MAX_BODY,
    HttpTransport,
    Request,
    Transport,
    json_type,
    optional_text,
    preview_json,
)
from .validation import StartRequest

__all__ = ["MAX_BODY", "ScnetClient"]

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


class ScnetClient:
    """A client for the SCNet notebook OpenAPI.

    Settings not given here come from the environment or the user config file
    (see :mod:`scnet_magic.config`); ``settings`` gives them all, already resolved (a front
    end resolves them once per call). The token is kept private: it is sent in the ``token``
    header and appears in no repr, message or log. ``transport`` sends the requests (by
    default over HTTP; :class:`~scnet_magic.transport.MockTransport` answers in memory).
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
        # ``ac_url``: the platform host, where booting an instance goes (default SCNET_AC_URL,
        # the config file, or https://www.scnet.cn).
        # ``language`` ("en", "zh"): the language messages are written in from now on, as
        # %config ScnetMagics.language sets it for the magics; None: SCNET_LANG, the locale.
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
        self.token_source = settings.token_source
        # A transport handed in belongs to the caller, who closes it.
        self._own_transport = transport is None
        self._transport = transport or HttpTransport(settings.timeout, retries=retries)

    def __repr__(self) -> str:
        return f"ScnetClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        if self._own_transport:
            self._transport.close()

    def __enter__(self) -> ScnetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- API -------------------------------------------------------------------------------

    def start_service(
        self, notebook_id: str | int, port: int | str, command: str | None = None
    ) -> StartResult:
        """Run ``command`` in the instance and open an external address to ``port``.

        Sent exactly once: starting is not idempotent, so it is never retried once the
        request may have reached the platform.
        """
        return self.send_start(validation.start_request(notebook_id, port, command))

    def send_start(self, request: StartRequest) -> StartResult:
        """Send a start request already checked (see :func:`validation.start_request`)."""
        try:
            envelope = self._call(endpoints.START, body=request.body())
            return self._start_result(request, envelope)
        except MalformedResponse as exc:
            # A start answered, but not as documented: it may have run all the same.
            raise MalformedResponse(
                exc.problem, exc.status, exc.body, Sentences(MAY_BE_RUNNING, exc.hint_message)
            ) from exc

    def _start_result(self, request: StartRequest, envelope: dict[str, Any]) -> StartResult:
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise MalformedResponse(
                Message(N_("'data' is {type}, expected an object"), type=json_type(data)),
                200,
                preview_json(data),
            )
        exec_success = data.get("execSuccess")
        if not isinstance(exec_success, bool):
            raise MalformedResponse(
                Message(
                    N_("'execSuccess' is {type}, expected true or false"),
                    type=json_type(exec_success),
                ),
                200,
                preview_json(exec_success),
            )
        error_msg = optional_text(data.get("errorMsg"))
        output = optional_text(data.get("output"))
        url = validation.extract_url(error_msg)
        if url is None:
            found = validation.extract_url(output)
            # Command output usually names the address the service listens on inside the
            # instance (http://0.0.0.0:7860); that is not the external address.
            url = found if found and not validation.is_local_url(found) else None
        if url is None:
            url = self._service_url_quietly(request.notebook_id)
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
        if data is None:
            return ServiceUrl(checked_id, None, None, envelope)
        if isinstance(data, str):
            return ServiceUrl(checked_id, validation.extract_url(data), None, envelope)
        if isinstance(data, dict):
            if data and not {"url", "status"} & data.keys():
                # Not what any source shows: say so rather than "no address yet".
                keys = ", ".join(sorted(map(str, data))[:8])
                raise MalformedResponse(
                    Message(N_("'data' has no 'url' or 'status' (it has: {keys})"), keys=keys),
                    200,
                    preview_json(data),
                ).at(str(endpoints.SERVICE_URL))
            url = data.get("url")
            status = data.get("status")
            return ServiceUrl(
                checked_id,
                validation.extract_url(url) if isinstance(url, str) else None,
                str(status) if status is not None else None,
                envelope,
            )
        raise MalformedResponse(
            Message(N_("'data' is {type}, expected an object or a URL"), type=json_type(data)),
            200,
            preview_json(data),
        )

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
        raise _endless(page, len(records), total)

    # -- the instance around the service ---------------------------------------------------

    def notebook(self, notebook_id: str | int) -> Notebook:
        """The instance's detail: status, custom port and command (``customsizePort``)."""
        checked_id = validation.validate_notebook_id(notebook_id)
        endpoint = str(endpoints.DETAIL)
        try:
            envelope = self._call(endpoints.DETAIL, params={"notebookId": checked_id})
        except ScnetError as exc:
            raise exc.at(endpoint) from None
        return lifecycle.notebook_from(envelope, checked_id, endpoint)

    def boot_notebook(self, notebook_id: str | int) -> dict[str, Any]:
        """Ask the platform to start (boot) a stopped instance; its answer, as it came.

        Sent to the platform host (``ac_url``) with this client's region token, exactly once:
        never re-sent automatically once it may have arrived. Booting takes a while; follow it
        with :meth:`wait_for_notebook`.
        """
        checked_id = validation.validate_notebook_id(notebook_id)
        ac_url = self.settings.ac_url
        boot = endpoints.BOOT
        endpoint = f"{boot.method} {ac_url}{boot.path}"
        request = Request.to(boot, ac_url, self.__token, body={"notebookId": checked_id})
        try:
            return self._transport.call(request)
        except (HttpError, ApiError) as exc:
            # A 404 or a redirect here most likely means SCNET_AC_URL is not the platform.
            raise account.address_hint(exc, ac_url, boot.host).at(endpoint) from None
        except ScnetError as exc:
            raise exc.at(endpoint) from None

    def stop_notebook(self, notebook_id: str | int, save_env: bool = True) -> StopResult:
        """Stop an instance (every process in it ends); ``save_env`` keeps its installed
        packages and files for the next start. An instance already stopped is not an error:
        the result says ``already_stopped``."""
        checked_id = validation.validate_notebook_id(notebook_id)
        if not isinstance(save_env, bool):
            raise InvalidInput(N_("save_env must be True or False"))
        try:
            envelope = self._call(
                endpoints.STOP, body={"notebookId": checked_id, "saveEnv": save_env}
            )
        except ScnetError as exc:
            if isinstance(exc, ApiError) and lifecycle.is_already_stopped(exc):
                return lifecycle.stop_result(None, checked_id, save_env, refused=exc)
            raise exc.at(str(endpoints.STOP)) from None
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

        Looks every half second at first, the interval growing to 5 s. ``Failed`` or
        ``timeout`` seconds passing raise :class:`~scnet_magic.errors.InstanceError` naming the
        last status. ``on_progress`` gets an ``InstanceProgress`` after every look that did not
        end the wait.
        """
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
        """Sign in with an access key pair and return a client for the region's token and address.

        Credentials not given come from ``SCNET_USER``, ``SCNET_ACCESS_KEY``,
        ``SCNET_SECRET_KEY`` or the config file; ``region`` (a name, part of one, or an id) is
        needed when the account has several. See :mod:`scnet_magic.account`.
        """
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
        """Replace this client's token with a renewed one (``tokens/next``), asked at
        ``ac_url`` or else this client's platform address."""
        self.__token = account.renew_token(
            self.__token,
            ac_url=ac_url or self.settings.ac_url,
            timeout=self.timeout,
            region=self.settings.token_region,
            transport=self._transport,
        )

    def token_state(self, ac_url: str | None = None) -> TokenState:
        """Whether the platform still accepts this client's token (``tokens/state``), asked
        at ``ac_url`` or else this client's platform address."""
        return account.token_state(
            self.__token,
            ac_url=ac_url or self.settings.ac_url,
            timeout=self.timeout,
            transport=self._transport,
        )

    def wait_until_ready(
        self,
        result_or_url: StartResult | str,
        timeout: float = readiness.DEFAULT_TIMEOUT,
        *,
        command: str | None = None,
        since: float | None = None,
        on_progress: Callable[[WaitProgress], None] | None = None,
        guard: readiness.GuardCheck | None = None,
    ) -> Readiness:
        """Wait until the service's external URL answers with something other than 502/503/504.

        With ``guard`` (a protected start), until that guard's status page says the service
        behind it is up.

        Polls the URL only: the start request is never sent again. ``command`` (the one the
        service was started with; by default the result's own) lets the error name its log
        file; ``since`` and ``on_progress`` are explained in
        :func:`scnet_magic.readiness.wait_until_ready`. Raises
        :class:`~scnet_magic.errors.NotReady` after ``timeout`` seconds.

        Given a :class:`StartResult`, the returned :class:`Readiness` carries that result
        marked ready as ``.result``: ``res = client.wait_until_ready(res).result`` makes
        ``res.ready`` and ``res.to_dict()["ready"]`` true, as after ``%scnet_start --wait``
        (:func:`scnet_magic.service.wait` returns it directly).
        """
        seconds = validation.validate_timeout(timeout)
        if isinstance(result_or_url, StartResult):
            url, port = result_or_url.url, result_or_url.port
            command = command if command is not None else result_or_url.command
            if url is None:
                raise ScnetError(
                    N_("the platform gave no external URL to wait for"),
                    N_("Ask for it with service_url(notebook_id) once the service is up."),
                )
        else:
            url, port = result_or_url, None
        watch = None
        if isinstance(result_or_url, StartResult) and command:
            # Where the command runs on this machine, a command that ended ends the wait.
            watch = local.CommandWatch(
                command,
                since if since is not None else time.monotonic(),
                here=local.runs_here(url),
                output=result_or_url.output,
            )
        ready = readiness.wait_until_ready(
            url,
            seconds,
            on_progress=on_progress,
            since=since,
            hint=readiness.not_ready_hint(command, port),
            guard=guard,
            # The kernel usually runs in the instance, where the service listens.
            local_port=port,
            ended=watch.ended if watch is not None else None,
        )
        if isinstance(result_or_url, StartResult):
            ready = replace(ready, result=result_or_url.marked_ready(ready.elapsed))
        return ready

    # -- HTTP ------------------------------------------------------------------------------

    def _service_url_quietly(self, notebook_id: str) -> str | None:
        """The URL from endpoint 2, or None: the start itself already succeeded."""
        try:
            return self.service_url(notebook_id).url
        except ScnetError as exc:
            log.debug("service URL query after start failed: %s", exc)
            return None

    def _call(
        self,
        endpoint: Endpoint,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request to the base URL, with the token, and return the envelope."""
        try:
            return self._transport.call(
                Request.to(endpoint, self.base_url, self.__token, params=params, body=body)
            )
        except ApiError as exc:
            if exc.code not in account.REFUSED_TOKEN_CODES:
                raise
            if self.settings.base_url_default:
                hint = self._default_host_hint()
                refused = ApiError(exc.code, exc.msg, exc.status, hint=hint)
                raise refused.add_hint(self._sources_note()) from None
            exc.add_hint(self._sources_note())
            raise
        except TransportError as exc:
            # A sandbox that has stopped, or an old address saved or exported: say which.
            reason = exc.values.get("reason")
            if isinstance(reason, Message) and reason.id == CONNECTION_REFUSED:
                exc.add_hint(self._sources_note())
            raise
        except HttpError as exc:
            if exc.status not in (401, 403, 404) or not self.settings.base_url_default:
                raise
            raise HttpError(exc.status, exc.reason, exc.body, self._default_host_hint()) from None

    def _sources_note(self) -> Message:
        """Where the token and the address of a refused call came from."""
        return Message(
            N_("The token came from {token_source}, the address from {address_source}."),
            token_source=self.token_source or "?",
            address_source=self.settings.base_url_source or Message(N_("the default base URL")),
        )

    def _default_host_hint(self) -> Message:
        """Why a region's token was refused when no base URL was set: it went to the
        documentation's example host, for want of the region's address."""
        return Message(
            N_(
                "This went to {url}, the default base URL (the documentation's example host): "
                "sign in with scnet login or %scnet_login, which finds your region's address, "
                "or set SCNET_BASE_URL to it."
            ),
            url=self.base_url,
        )


def _endless(pages: int, records: int, total: object) -> ScnetError:
    """The error for a notebook list that did not end: what was read, and what it claimed."""
    return MalformedResponse(
        Message(
            N_(
                "the notebook list did not end after {pages} pages ({records} records read; the "
                "answer's total: {total})"
            ),
            pages=pages,
            records=records,
            total=preview_json(total),
        ),
        200,
        "",
        N_("Narrow the list with a status or a name (--status, --name)."),
    ).at(str(endpoints.LIST))
