"""What the imitated platform knows: endpoints, notebooks, regions, answers and input checks."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import Any

from .. import endpoints
from ..endpoints import Endpoint, Host
from ..local import SANDBOX_SUBJECT

logger = logging.getLogger("scnet_magic.sandbox")

# Every endpoint the package calls, and the instance's own Jupyter address, by path. Each
# host answers only its own (scnet-api.md, section 5), on a port of its own, so that a request
# sent to the wrong host fails as it would on SCNet.
NOTEBOOK_URL = Endpoint("GET", "/ai/openapi/v2/notebook/url", Host.REGION)
ENDPOINTS = {
    e.path: e for e in [*vars(endpoints).values(), NOTEBOOK_URL] if isinstance(e, Endpoint)
}
# The hosts by the names the log and the tests' records give them.
ROLES = {Host.LOGIN: "login", Host.PLATFORM: "platform", Host.REGION: "ai"}

# The token endpoint's regions: clusterId -> clusterName. The entry with clusterId 0 named
# "ac" is the platform's own token, which region calls refuse.
PLATFORM = "0"
REGIONS = {
    PLATFORM: "ac",
    "11250": "华东一区【昆山】",
    "11276": "西北一区【西安】",
    "11300": "华中一区【郑州】",
}
DEFAULT_REGION = "11250"  # the region of the sandbox's own token
CLOSED_REGION = "11300"  # the account is not opened there: its token is null
MAX_CLOCK_SKEW = 300  # how far a signed timestamp may be from the server's clock, in seconds

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html"
MAX_BODY = 1024 * 1024
OUTPUT_LIMIT = 64 * 1024  # of a started command's output, in the start's answer

PENDING_MSG = (
    "根据您提供的端口,未检测到可用的服务。若您的服务为特定的API接口,"
    "系统将自动建立通路,对应的外部地址为:"
)
STATUSES = ("Creating", "Restarting", "Running", "Terminated", "Failed", "Shutting")


def nginx_page(status: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


BAD_GATEWAY_PAGE = nginx_page("502 Bad Gateway")

_MIX = ("Running", "Terminated", "Creating", "Failed", "Shutting", "Terminated")
_DEMOS = [
    (str(1897000000000000000 + 7919 * i), f"demo-{i:02d}", _MIX[i % len(_MIX)])
    for i in range(4, 26)
]
NOTEBOOKS = tuple(
    {
        "id": nid,
        "notebookName": name,
        "notebookStatus": status,
        "createTime": f"2025-03-{1 + i % 28:02d} 10:{i:02d}:17",
        "imageName": "jupyterlab-pytorch:2.1.0-ubuntu20.04-dtk24.04.1-py3.10",
        "resourceGroup": "kshdnormal",
        "acceleratorType": "DCU",
        "acceleratorNumber": "1",
    }
    for i, (nid, name, status) in enumerate(
        [
            ("1896050410550136833", "sdxl-webui", "Running"),
            ("1896476639463936002", "llm-api", "Running"),
            ("1896050410550136834", "old-experiment", "Terminated"),
            *_DEMOS,
        ]
    )
)
_BY_ID = {record["id"]: record for record in NOTEBOOKS}


class Refusal(Exception):
    """A call the platform refuses: ``args`` are the envelope's code and message."""


def envelope(code: str, msg: str, data: object = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def make_token() -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    claims = {"sub": SANDBOX_SUBJECT, "jti": secrets.token_hex(8), "iat": int(time.time())}
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64(secrets.token_bytes(32))}"


def parse_body(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        # Not JSON, or nested past what the parser can follow: text, which every endpoint
        # refuses as "not a JSON object" (10004), as the platform does.
        return raw.decode("utf-8", "replace")


def json_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refusal("10004", "参数无效: 请求体必须是JSON对象")
    return body


def notebook(value: object, field: str = "notebookId") -> dict[str, str]:
    if value is None or value == "":
        raise Refusal("10003", "参数不全")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise Refusal("10004", f"参数无效: {field}")
    record = _BY_ID.get(value)
    if record is None:
        raise Refusal("10004", f"参数无效: Notebook实例不存在({value})")
    return record


def port(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise Refusal("10004", "参数无效: customizePort")
    return value


def int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 9 and low <= int(value) <= high):
        raise Refusal("10004", f"参数无效: {name}")
    return int(value)
