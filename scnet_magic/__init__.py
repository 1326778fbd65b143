"""scnet-magic: start and reach a custom service in an SCNet notebook instance from Jupyter.

``%load_ext scnet_magic`` registers ``%scnet_start`` / ``%%scnet_start``, ``%scnet_url``,
``%scnet_notebooks``, ``%scnet_login``, ``%scnet_token`` and ``%scnet_sandbox``;
:class:`ScnetClient` offers the same from Python and ``scnet`` from a shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .client import ScnetClient
from .errors import (
    ApiError,
    ConfigError,
    HttpError,
    InvalidInput,
    LoginError,
    MalformedResponse,
    NotReady,
    RequestTimeout,
    ScnetError,
    TransportError,
)
from .models import NotebookList, ServiceUrl, StartResult

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .sandbox import Sandbox

__all__ = [
    "ApiError",
    "ConfigError",
    "HttpError",
    "InvalidInput",
    "LoginError",
    "MalformedResponse",
    "NotReady",
    "NotebookList",
    "RequestTimeout",
    "Sandbox",
    "ScnetClient",
    "ScnetError",
    "ServiceUrl",
    "StartResult",
    "TransportError",
    "__version__",
    "form",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def form(**defaults: Any) -> Any:
    """Show the start form (ipywidgets is imported only now)."""
    from .form import form as _form

    return _form(**defaults)


def __getattr__(name: str) -> Any:
    # The sandbox is for trying things out and for tests; importing it lazily keeps
    # ``%load_ext`` cheap.
    if name == "Sandbox":
        from .sandbox import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the magics (``%load_ext scnet_magic``)."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove everything ``load_ipython_extension`` added (``%unload_ext scnet_magic``)."""
    from .magics import unload

    unload(ipython)
