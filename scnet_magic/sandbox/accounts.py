"""The account side of the sandbox: signed sign-in, token checks, renewal, region discovery."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from email.message import Message
from typing import TYPE_CHECKING, Any

from .data import (
    _CLOSED_REGION,
    _DEFAULT_REGION,
    _MAX_CLOCK_SKEW,
    _PLATFORM,
    _REGIONS,
    _envelope,
    _make_token,
)


class _Accounts:
    """The account endpoints of ``Sandbox``, which sets this state up."""

    token: str
    user: str
    access_key: str
    secret_key: str
    _issued: dict[str, str]
    _replaced: set[str]
    _lock: threading.Lock

    if TYPE_CHECKING:

        @property
        def base_url(self) -> str: ...

    def accepts_token(self, token: str | None) -> bool:
        """Whether the API takes ``token``: the sandbox's own, or an issued one not yet renewed."""
        if token is None:
            return False
        with self._lock:
            valid = [self.token, *self._issued]
        # Every candidate is compared, so the time taken does not tell which one nearly matched.
        return sum(hmac.compare_digest(token.encode(), t.encode()) for t in valid) > 0

    def expired(self, token: str) -> bool:
        """Whether ``token`` was issued here and then replaced by a renewal."""
        with self._lock:
            replaced = list(self._replaced)
        return sum(hmac.compare_digest(token.encode(), t.encode()) for t in replaced) > 0

    def _issue_tokens(self, headers: Message) -> dict[str, Any]:
        """The token endpoint: check the signed headers, then one token per region."""
        user, access_key, timestamp, signature = (
            headers.get(name, "").strip()
            for name in ("user", "accessKey", "timestamp", "signature")
        )
        if not (user and access_key and timestamp and signature):
            return _envelope("10003", "参数不全: user, accessKey, timestamp, signature")
        # The refusals as scnet-api.md section 5 reports them seen: an unknown user "10009
        # 用户不存在", a signature that does not match "AK/SK签名校验失败" (its code unknown:
        # 10004, invalid parameter). An unknown access key cannot be told from a bad signature.
        if user != self.user:
            return _envelope("10009", "用户不存在")
        if not hmac.compare_digest(access_key.encode(), self.access_key.encode()):
            return _envelope("10004", "AK/SK签名校验失败")
        now = self._now()
        if not (timestamp.isascii() and timestamp.isdigit()) or (
            abs(now - int(timestamp)) > _MAX_CLOCK_SKEW
        ):
            return _envelope("10004", "参数无效: timestamp已过期，请校准系统时间")
        # Computed here on its own, not with the client's code, so that each checks the other.
        fields = {"accessKey": access_key, "timestamp": timestamp, "user": user}
        signed = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        expected = hmac.new(self.secret_key.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return _envelope("10004", "AK/SK签名校验失败")
        data = []
        with self._lock:
            for region_id, name in (_PLATFORM, *_REGIONS):
                token = None
                if region_id != _CLOSED_REGION:
                    token = _make_token()
                    self._issued[token] = region_id
                data.append(
                    {"clusterName": name, "clusterId": _cluster_id(region_id), "token": token}
                )
        return _envelope("0", "success", data)

    def _now(self) -> float:
        """The server's clock, which signed timestamps are checked against."""
        return time.time()

    def _region_of(self, token: str) -> str:
        """The region of an accepted token; the sandbox's own belongs to the default region."""
        with self._lock:
            return self._issued.get(token, _DEFAULT_REGION)

    def _renew(self, token: str) -> list[dict[str, Any]]:
        """A new token for the same region; the old one expires (calls with it answer 10008),
        except the sandbox's own, which stays.

        The answer is the documented array of region entries holding ``token``
        (renewal-token.html, "区域信息列表").
        """
        new = _make_token()
        with self._lock:
            region_id = self._issued.pop(token, None)
            if region_id is None:  # the sandbox's own token: it stays valid
                region_id = _DEFAULT_REGION
            else:
                self._replaced.add(token)
            self._issued[new] = region_id
        name = dict(_REGIONS).get(region_id, region_id)
        return [{"clusterId": _cluster_id(region_id), "clusterName": name, "token": new}]

    def _center(self, token: str) -> dict[str, Any] | list[dict[str, Any]]:
        """Region discovery: the entry of the token's region (the platform token never gets
        here), one object as working clients receive it."""
        return self._region_entry(self._region_of(token))

    def _region_entry(self, region_id: str) -> dict[str, Any]:
        """Region discovery's entry: the notebook APIs (aiUrls) lead back to this sandbox."""
        name = dict(_REGIONS).get(region_id, region_id)
        if region_id == _DEFAULT_REGION:
            # One address without an enable flag, usable as the page says; written with the
            # trailing /ai that clients strip, as the platform does.
            ai_urls: list[dict[str, Any]] = [{"url": self.base_url + "/ai"}]
        else:
            # A disabled address first, and the flag as text, as some answers carry it.
            ai_urls = [
                {"url": "https://xaai.scnet.cn:58043/ai", "enable": False},
                {"url": self.base_url + "/", "enable": "true"},
            ]
        return {
            "id": region_id,
            "name": name,
            "aiUrls": ai_urls,
            "hpcUrls": [{"url": "https://hpc.scnet.invalid:58043", "enable": True}],
            "efileUrls": [{"url": "https://efile.scnet.invalid:58043", "enable": True}],
        }


def _cluster_id(region_id: str) -> int | str:
    """A region id as the token answer writes it: a number for some entries, text for others
    (both are seen), so that a client has to accept either."""
    return int(region_id) if region_id in (_PLATFORM[0], _DEFAULT_REGION) else region_id
