from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from scnet_magic.config import (
    DEFAULT_AC_URL,
    DEFAULT_BASE_URL,
    DEFAULT_LOGIN_URL,
    DEFAULT_TIMEOUT,
    read_config_file,
    resolve,
    resolve_login,
    save_config,
)
from scnet_magic.errors import ConfigError, InvalidInput

from frontends import run_scnet

FILE = (
    'token = "eyJfile.a.b"\nbase_url = "https://file.example.cn"\nnotebook_id = "3"\ntimeout = 7\n'
)


def write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def test_defaults_when_nothing_is_set() -> None:
    settings = resolve()
    assert settings.token is None and settings.token_source is None
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.timeout == DEFAULT_TIMEOUT and settings.notebook_id is None


def test_order_explicit_session_environment_file(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated_config, FILE)
    s = resolve()
    assert (s.token, s.base_url, s.notebook_id, s.timeout) == (
        "eyJfile.a.b",
        "https://file.example.cn",
        "3",
        7.0,
    )
    assert s.token_source is not None and s.token_source.startswith("config file")

    monkeypatch.setenv("SCNET_TOKEN", "eyJenv.a.b")
    monkeypatch.setenv("SCNET_BASE_URL", "https://env.example.cn/")
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", "2")
    monkeypatch.setenv("SCNET_TIMEOUT", "5")
    s = resolve()
    assert (s.token, s.base_url, s.notebook_id, s.timeout) == (
        "eyJenv.a.b",
        "https://env.example.cn",
        "2",
        5.0,
    )
    assert s.token_source == "SCNET_TOKEN"

    session = {
        "token": "eyJses.a.b",
        "base_url": "https://ses.example.cn",
        "notebook_id": "1",
        "timeout": 4,
    }
    s = resolve(session=session)
    assert (s.token, s.base_url, s.notebook_id, s.timeout) == (
        "eyJses.a.b",
        "https://ses.example.cn",
        "1",
        4.0,
    )
    assert s.token_source == "%scnet_token"

    s = resolve(token="eyJarg.a.b", base_url="https://arg.example.cn", timeout=3, session=session)
    assert (s.token, s.base_url, s.timeout) == ("eyJarg.a.b", "https://arg.example.cn", 3.0)
    assert s.token_source == "argument"


def test_resolved_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve().token is None
    monkeypatch.setenv("SCNET_TOKEN", "eyJlater.a.b")
    assert resolve().token == "eyJlater.a.b"


def test_missing_token_names_the_three_ways() -> None:
    with pytest.raises(ConfigError) as info:
        resolve().require_token()
    text = info.value.user_message()
    assert "%scnet_token" in text and "SCNET_TOKEN" in text and "token =" in text


def test_a_config_file_that_is_not_there_is_named_when_the_token_was_to_come_from_it(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = isolated_config.parent / "nowhere" / "confg.toml"
    monkeypatch.setenv("SCNET_CONFIG_FILE", str(typo))
    # Read as empty: the other settings still resolve (and --save may create it later).
    assert resolve().base_url == DEFAULT_BASE_URL
    with pytest.raises(ConfigError) as info:
        resolve().require_token()
    assert info.value.hint.startswith(f"SCNET_CONFIG_FILE names {typo}, which does not exist. ")
    # The scnet command says it too, and in Chinese.
    done = run_scnet(["notebooks"], {"SCNET_LANG": "zh"})
    assert done.returncode == 2 and f"SCNET_CONFIG_FILE 指向的 {typo} 不存在。" in done.stderr
    # Writing is what creates it, folder and all; once there, nothing more is said of it.
    assert save_config({"timeout": "5"}) == typo and typo.exists()
    with pytest.raises(ConfigError) as info:
        resolve().require_token()
    assert "does not exist" not in info.value.user_message()


def test_bad_value_names_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCNET_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match=r"timeout.*\(from SCNET_TIMEOUT\)"):
        resolve()
    monkeypatch.delenv("SCNET_TIMEOUT")
    monkeypatch.setenv("SCNET_BASE_URL", "http://scnet.example.cn")
    with pytest.raises(InvalidInput, match=r"from SCNET_BASE_URL"):
        resolve()


def test_token_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCNET_TOKEN", "eyJsecret.a.b")
    assert "eyJsecret" not in repr(resolve())


def test_readable_token_file_warns(
    isolated_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_config, FILE, 0o644)
    read_config_file(isolated_config)
    # One line on stderr, without the source line Python's warnings would add.
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("Warning: config file ") and line.endswith(
        "chmod 600 " + str(isolated_config)
    )


def test_private_token_file_and_token_free_file_do_not_warn(isolated_config: Path) -> None:
    write(isolated_config, FILE, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_config_file(isolated_config)
        write(isolated_config, 'base_url = "https://x.cn"\n', 0o644)
        assert read_config_file(isolated_config) == {"base_url": "https://x.cn"}


def test_invalid_toml_is_a_clear_error(isolated_config: Path) -> None:
    write(isolated_config, "token = eyJ-no-quotes\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve()


def test_the_three_addresses_and_their_sources(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login host, platform host (/ac/...) and the region's AI address are separate settings."""
    s = resolve()
    assert (s.login_url, s.ac_url) == (DEFAULT_LOGIN_URL, DEFAULT_AC_URL)
    assert (DEFAULT_LOGIN_URL, DEFAULT_AC_URL) == ("https://api.scnet.cn", "https://www.scnet.cn")
    write(isolated_config, 'ac_url = "https://file-ac.example.cn/"\n')
    assert resolve().ac_url == resolve_login().ac_url == "https://file-ac.example.cn"
    monkeypatch.setenv("SCNET_AC_URL", "https://env-ac.example.cn")
    assert resolve().ac_url == resolve_login().ac_url == "https://env-ac.example.cn"
    session = {"ac_url": "https://ses-ac.example.cn", "login_url": "https://ses-login.example.cn"}
    s = resolve(session=session)
    assert (s.login_url, s.ac_url) == ("https://ses-login.example.cn", "https://ses-ac.example.cn")
    assert resolve_login(ac_url="https://arg-ac.example.cn", session=session).ac_url == (
        "https://arg-ac.example.cn"
    )


@pytest.mark.parametrize(
    ("source", "value", "says"),
    [
        ("SCNET_AC_URL", "http://www.scnet.example", r"platform URL must use https://"),
        ("SCNET_AC_URL", "ftp://www.scnet.cn", r"platform URL must start with https://"),
        ("SCNET_AC_URL", "https://www.scnet.cn/?q=1", r"platform URL .*query or fragment"),
        ("config file", "http://www.scnet.example", r"platform URL must use https://"),
    ],
)
def test_a_bad_platform_url_is_one_line_naming_the_setting(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch, source: str, value: str, says: str
) -> None:
    if source == "config file":
        write(isolated_config, f'ac_url = "{value}"\n')
    else:
        monkeypatch.setenv(source, value)
    for resolving in (resolve, resolve_login):
        with pytest.raises(InvalidInput, match=says) as info:
            resolving()
        line = info.value.user_message()
        assert "\n" not in line and f"(from {source}" in line
