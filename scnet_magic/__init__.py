"""scnet-magic: start and reach a custom service in an SCNet notebook instance from Jupyter.

``%load_ext scnet_magic`` registers ``%scnet_start`` / ``%%scnet_start``, ``%scnet_url``,
``%scnet_notebooks``, ``%scnet_stop``, ``%scnet_login``, ``%scnet_token`` and ``%scnet_sandbox``;
:func:`start_service` (with ``wait``, ``boot`` and ``protect``) and :class:`ScnetClient` offer
the same from Python, and ``scnet`` from a shell. ``__all__`` is the public surface.

Importing it costs little: the client, ``requests``, the widgets and the sandbox are imported
on first use. Loading the extension hands the magics the widgets they may show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ApiError,
    CommandEnded,
    ConfigError,
    GuardFailed,
    GuardUnreachable,
    HttpError,
    InstanceError,
    InstanceTimeout,
    InvalidInput,
    LoginError,
    MalformedResponse,
    NotReady,
    RequestTimeout,
    ScnetError,
    TransportError,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import ScnetClient
    from .models import (
        Notebook,
        NotebookList,
        Readiness,
        ServiceUrl,
        StartResult,
        StopResult,
        TokenState,
    )
    from .sandbox import Sandbox
    from .service import start_service

__all__ = [
    "ApiError",
    "CommandEnded",
    "ConfigError",
    "GuardFailed",
    "GuardUnreachable",
    "HttpError",
    "InstanceError",
    "InstanceTimeout",
    "InvalidInput",
    "LoginError",
    "MalformedResponse",
    "NotReady",
    "Notebook",
    "NotebookList",
    "Readiness",
    "RequestTimeout",
    "Sandbox",
    "ScnetClient",
    "ScnetError",
    "ServiceUrl",
    "StartResult",
    "StopResult",
    "TokenState",
    "TransportError",
    "__version__",
    "form",
    "load_ipython_extension",
    "start_service",
    "unload_ipython_extension",
]

# Names imported on first use: where each lives.
_LAZY = {
    "ScnetClient": "client",
    "Notebook": "models",
    "NotebookList": "models",
    "Readiness": "models",
    "StopResult": "models",
    "ServiceUrl": "models",
    "StartResult": "models",
    "TokenState": "models",
    "Sandbox": "sandbox",
    "start_service": "service",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public names, lazy ones included (tab completion offers ScnetClient before its first
    # use), and not the typing helpers this module happens to import.
    return sorted(__all__)


def form(**defaults: Any) -> Any:
    """Show the start form, with the settings and language of this IPython session's
    ``%load_ext scnet_magic`` when there is one (ipywidgets is imported only now)."""
    from .startform import form as show_form

    return show_form(**defaults)


def _pick_region(account: Any, on_login: Any) -> Any:
    from .startform import region_picker

    return region_picker(account, on_login)


def _confirm(warning: str, label: str, on_confirm: Any) -> Any:
    from .startform import confirm_box

    return confirm_box(warning, label, on_confirm)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the magics (``%load_ext scnet_magic``), with the widgets they may show: the
    magics never import the widgets front end, which is imported only when one is shown."""
    from .magics import Widgets, load

    load(ipython, Widgets(form=form, pick_region=_pick_region, confirm=_confirm))


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove everything ``load_ipython_extension`` added (``%unload_ext scnet_magic``)."""
    from .magics import unload

    unload(ipython)
