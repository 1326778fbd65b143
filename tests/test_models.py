from __future__ import annotations

from dataclasses import replace

import pytest

from scnet_magic.errors import InvalidInput
from scnet_magic.validation import (
    extract_url,
    start_request,
    validate_base_url,
    validate_command,
    validate_notebook_id,
    validate_port,
    validate_timeout,
    validate_token,
)

BIG_ID = 1896050410550136833  # above 2**53: a float would change it


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1896050410550136833", "1896050410550136833"),
        ("  1896050410550136833\n", "1896050410550136833"),
        (BIG_ID, "1896050410550136833"),
        ("7", "7"),
    ],
)
def test_notebook_id_accepted_and_kept_exact(value: object, expected: str) -> None:
    assert validate_notebook_id(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("18960a0410550136833", "only digits"),
        ("1896 0504", "only digits"),
        ("-5", "only digits"),
        ("１２３", "only digits"),  # full-width digits are digits to str.isdigit, not to the API
        (1.896050410550136833e18, "float"),
        (True, "bool"),
        (None, "NoneType"),
    ],
)
def test_notebook_id_rejected(value: object, fragment: str) -> None:
    with pytest.raises(InvalidInput, match="notebook id") as info:
        validate_notebook_id(value)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), (65535, 65535), ("1223", 1223), (" 80 ", 80)]
)
def test_port_accepted(value: object, expected: int) -> None:
    assert validate_port(value) == expected


@pytest.mark.parametrize(
    "value", [0, 65536, -1, "abc", "12.5", "1e3", "", "-1", "0x50", 12.0, True, None]
)
def test_port_rejected(value: object) -> None:
    with pytest.raises(InvalidInput, match="port"):
        validate_port(value)


def test_command_none_means_omit_and_blank_is_an_error() -> None:
    assert validate_command(None) is None
    line = 'cd /root && python app.py --port 1 > /root/a.log 2>&1 \\\n  && echo "done"'
    assert validate_command(line) == line  # kept verbatim
    for blank in ("", "   ", "\n\t"):
        with pytest.raises(InvalidInput, match="command is empty"):
            validate_command(blank)
    with pytest.raises(InvalidInput, match="command must be text"):
        validate_command(42)


def test_start_body_sends_strings_and_omits_missing_command() -> None:
    body = start_request(BIG_ID, 1223).body()
    assert body == {"id": "1896050410550136833", "customizePort": "1223"}
    assert start_request("1", "80", "python app.py").body() == {
        "id": "1",
        "customizePort": "80",
        "command": "python app.py",
    }


@pytest.mark.parametrize(
    ("token", "rule"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc\r\nX-Injected: 1", "line breaks"),
        ("abc\ndef", "line breaks"),
        ("abc\x00def", "control"),
        ("abc def", "spaces"),
        ("tökén", "ASCII"),
        (None, "text"),
    ],
)
def test_token_rejected_without_echo(token: object, rule: str) -> None:
    with pytest.raises(InvalidInput, match="token") as info:
        validate_token(token)
    assert rule in str(info.value)
    if isinstance(token, str) and token.strip():
        assert token.strip() not in str(info.value)


def test_token_trimmed() -> None:
    assert validate_token("  eyJabc.def.ghi \n") == "eyJabc.def.ghi"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://scnet-demo.accloud.cn", "https://scnet-demo.accloud.cn"),
        ("https://api.example.cn:8443/", "https://api.example.cn:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.5.0.1:8080/", "http://127.5.0.1:8080"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    assert validate_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("scnet-demo.accloud.cn", "https://"),
        ("ftp://scnet-demo.accloud.cn", "https://"),
        ("http://scnet-demo.accloud.cn", "loopback"),
        ("http://10.0.0.1", "loopback"),
        ("https://", "https://"),
        ("", "empty"),
        ("https://host:notaport", "not a valid URL"),
        ("https://a.cn/?x=1", "query"),
    ],
)
def test_base_url_rejected(url: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match="base URL") as info:
        validate_base_url(url)
    assert rule in str(info.value)


def test_base_url_with_credentials_rejected_without_echoing_them() -> None:
    with pytest.raises(InvalidInput, match="user name or password") as info:
        validate_base_url("https://alice:s3cret@scnet.example.cn")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("value", [0, -1, "abc", float("nan"), float("inf"), True, None])
def test_timeout_rejected(value: object) -> None:
    with pytest.raises(InvalidInput, match="timeout"):
        validate_timeout(value)


def test_timeout_accepts_numbers_and_numeric_text() -> None:
    assert validate_timeout("2.5") == 2.5
    assert validate_timeout(10) == 10.0


DOC_MSG = (
    "根据您提供的端口,未检测到可用的服务。若您的服务为特定的API接口,系统将自动建立通路,"
    "对应的外部地址为:https://c-1896476639463936002.ksai.scnet.cn:58043"
)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        (DOC_MSG, "https://c-1896476639463936002.ksai.scnet.cn:58043"),
        ("地址:https://c-1.zzai.scnet.cn:58043。请稍候", "https://c-1.zzai.scnet.cn:58043"),
        ("地址https://c-1.zzai.scnet.cn:58043，然后", "https://c-1.zzai.scnet.cn:58043"),
        ("（https://c-1.zzai.scnet.cn:58043）", "https://c-1.zzai.scnet.cn:58043"),
        ("见https://c-1.zzai.scnet.cn:58043；", "https://c-1.zzai.scnet.cn:58043"),
        ("「https://c-1.zzai.scnet.cn:58043」", "https://c-1.zzai.scnet.cn:58043"),
        ("url: https://c-1.zzai.scnet.cn:58043/ui/.", "https://c-1.zzai.scnet.cn:58043/ui/"),
        ("(see https://c-1.zzai.scnet.cn:58043)", "https://c-1.zzai.scnet.cn:58043"),
        ('"https://c-1.zzai.scnet.cn:58043",', "https://c-1.zzai.scnet.cn:58043"),
        ("at https://h.cn/a?b=1&c=2;", "https://h.cn/a?b=1&c=2"),
        ("gateway http://127.0.0.1:4567/ ok", "http://127.0.0.1:4567/"),
    ],
)
def test_extract_url_stops_at_punctuation(text: str, url: str) -> None:
    assert extract_url(text) == url


@pytest.mark.parametrize("text", [None, "", "no address here", "https:// nothing", 42])
def test_extract_url_none(text: object) -> None:
    assert extract_url(text) is None


def test_optional_keys_appear_only_when_known() -> None:
    from scnet_magic.models import Notebook, ServiceUrl

    record = Notebook.from_record({"status": "Running", "customPort": 8000}, "7")
    assert "user_port" not in record.to_dict()
    assert ServiceUrl("7", None, None, {}).to_dict().keys() == {
        "notebook_id",
        "url",
        "status",
        "active",
        "raw",
    }
    guarded = ServiceUrl("7", "https://x", "active", {}, instance=replace(record, user_port=7860))
    assert guarded.to_dict()["instance"]["user_port"] == 7860
