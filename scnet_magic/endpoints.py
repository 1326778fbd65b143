"""Every platform endpoint this package calls, once: its method, path and host (the login
host, the platform host for every ``/ac/...`` call, a region's AI address for the notebook
APIs; ``scnet-api.md``, section 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .i18n import N_


class Host(Enum):
    """A kind of host: what hints call its address, and the variable that sets it."""

    LOGIN = (N_("the login URL (SCNET_LOGIN_URL)"), "SCNET_LOGIN_URL")
    PLATFORM = (N_("the platform address (SCNET_AC_URL)"), "SCNET_AC_URL")
    REGION = (N_("the base URL"), "SCNET_BASE_URL")

    def __init__(self, address_name: str, variable: str) -> None:
        self.address_name = address_name
        self.variable = variable


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    host: Host

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


_NOTEBOOK = "/ai/openapi/v2/notebook"

START = Endpoint("POST", f"{_NOTEBOOK}/customize-service/actions/start", Host.REGION)
SERVICE_URL = Endpoint("GET", f"{_NOTEBOOK}/customize-service/url", Host.REGION)
# Also the first notebook call after sign-in: the cheapest one (a page of one instance).
LIST = Endpoint("GET", f"{_NOTEBOOK}/list", Host.REGION)
# The instance endpoints are known only from public clients that call the real platform
# (scnet-api.md, section 6). Booting lives on the platform host, with the region's token.
DETAIL = Endpoint("GET", f"{_NOTEBOOK}/detail", Host.REGION)
STOP = Endpoint("POST", f"{_NOTEBOOK}/actions/stop", Host.REGION)
BOOT = Endpoint("POST", "/ac/openapi/v2/notebook/actions/start", Host.PLATFORM)

TOKENS = Endpoint("POST", "/api/user/v3/tokens", Host.LOGIN)
CENTER = Endpoint("GET", "/ac/openapi/v2/center", Host.PLATFORM)
RENEW = Endpoint("POST", "/ac/openapi/v2/tokens/next", Host.PLATFORM)
STATE = Endpoint("GET", "/ac/openapi/v2/tokens/state", Host.PLATFORM)
