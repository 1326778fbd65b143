from __future__ import annotations

import pytest

from scnet_magic import i18n
from scnet_magic.errors import (
    ERROR_CODES,
    ApiError,
    ConfigError,
    HttpError,
    InvalidInput,
    MalformedResponse,
    RequestTimeout,
    ScnetError,
    TransportError,
    as_sentence,
)

DOCUMENTED = [
    "10001",
    "10003",
    "10004",
    "10007",
    "10008",
    "10009",
    "10010",
    "10011",
    "10012",
    "716865",
]


def test_table_holds_every_documented_code() -> None:
    assert sorted(ERROR_CODES) == sorted(DOCUMENTED)
    for info in ERROR_CODES.values():
        assert info.meaning and info.hint
        # The documented Chinese meanings are the catalog's translations of the English ones.
        with i18n.using("zh"):
            assert i18n._(info.meaning) != info.meaning


@pytest.mark.parametrize("code", DOCUMENTED)
def test_documented_code_message_has_code_msg_meaning_and_hint(code: str) -> None:
    error = ApiError(code, "服务器说明", status=200)
    text = str(error)
    assert code in text and "服务器说明" in text and ERROR_CODES[code].meaning in text
    assert error.hint == ERROR_CODES[code].hint
    assert error.code == code and error.msg == "服务器说明" and error.meaning
    assert "\n" not in error.user_message()


def test_specific_hints() -> None:
    assert "expired" in ApiError("10008", "").hint
    assert "region" in ApiError("10009", "").hint
    assert "port" in ApiError("10003", "").hint and "port" in ApiError("10004", "").hint


@pytest.mark.parametrize("code", ["716020", "716864", "716866", "716870", "99"])
def test_unknown_code_still_clear(code: str) -> None:
    error = ApiError(code, "实例未处于运行状态")
    assert code in str(error) and "实例未处于运行状态" in str(error)
    assert error.meaning is None and error.hint


def test_empty_msg_is_said() -> None:
    assert "(no message)" in str(ApiError("10001", ""))


def test_hierarchy_follows_the_builtins_it_resembles() -> None:
    assert issubclass(InvalidInput, ValueError)
    assert issubclass(TransportError, ConnectionError)
    assert issubclass(RequestTimeout, TimeoutError) and issubclass(RequestTimeout, TransportError)
    for cls in (InvalidInput, ConfigError, ApiError, HttpError, MalformedResponse, TransportError):
        assert issubclass(cls, ScnetError)


def test_http_and_malformed_errors_carry_what_came_back() -> None:
    http = HttpError(502, "Bad Gateway", "<html>502</html>", "try later")
    assert (http.status, http.body) == (502, "<html>502</html>")
    assert str(http) == "HTTP 502 Bad Gateway: <html>502</html>"
    bad = MalformedResponse("not valid JSON", 200, '{"code": "0"')
    assert bad.status == 200 and bad.problem == "not valid JSON"
    assert str(bad) == 'Unexpected answer (HTTP 200, not valid JSON): {"code": "0"'


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("no notebook id", "No notebook id."),
        ("sign-in refused: x", "Sign-in refused: x."),
        ("No SCNET token is set.", "No SCNET token is set."),
        ("--port is required", "--port is required."),
        (
            "%scnet_login --forget takes no other option",
            "%scnet_login --forget takes no other option.",
        ),
        ("scnet guard --list shows them", "scnet guard --list shows them."),
        ("http://127.0.0.1:1 did not answer", "http://127.0.0.1:1 did not answer."),
        ("/tmp/x.toml is not valid", "/tmp/x.toml is not valid."),
        ("aiUrls is empty", "aiUrls is empty."),
        ("config.toml is unreadable:", "config.toml is unreadable."),
        ("cut short…", "Cut short…."),
        ("The last lines:\nline one", "The last lines:\nline one"),
        ("", ""),
    ],
)
def test_a_message_is_shown_as_a_sentence_its_identifiers_as_written(
    written: str, shown: str
) -> None:
    assert as_sentence(written) == shown
    with i18n.using("zh"):
        assert as_sentence("没有 notebook id") == "没有 notebook id。"
        assert as_sentence("token 无效：") == "token 无效。"
        assert as_sentence("完成。") == "完成。"


def test_user_message_joins_message_and_hint() -> None:
    assert ScnetError("a", "b").user_message() == "A. B."
    assert ScnetError("a").user_message() == "A."


def test_api_error_shows_a_non_200_status() -> None:
    assert str(ApiError("10008", "权限不足", status=401)) == (
        "SCNet API error 10008 (insufficient permission, HTTP 401): 权限不足"
    )
    assert str(ApiError("716866", "x", status=500)) == "SCNet API error 716866 (HTTP 500): x"
    assert "HTTP" not in str(ApiError("10008", "x", status=200))


def test_api_error_puts_whatever_the_server_sent_on_one_short_line() -> None:
    error = ApiError("10001\nX", "第一行\r\n第二行\t" + "长" * 5000)
    for text in (str(error), error.user_message()):
        assert "\n" not in text and "\r" not in text and len(text) < 400
    assert "第一行 第二行 长" in str(error) and str(error).endswith("…")
    assert error.msg.startswith("第一行\r\n")  # the field keeps what came
