from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from scnet_magic.config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, read_config_file, resolve
from scnet_magic.errors import ConfigError, InvalidInput

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
