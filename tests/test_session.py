"""The magics' session as a plain object, without an IPython shell: settings in the order the
magics use them, one client kept while they stay the same, and a sandbox that points the
session at itself and puts everything back when stopped."""

from __future__ import annotations

import pytest

from scnet_magic import InvalidInput
from scnet_magic.magics import Options, Session
from scnet_magic.sandbox import Sandbox


def test_the_session_s_values_come_before_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNET_TOKEN", "from-the-environment")
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", "1234567890123456789")
    session = Session(Options(base_url=sandbox.base_url, timeout=7))
    session.use_token(sandbox.token)
    settings = session.settings()
    assert settings.token == sandbox.token and settings.base_url == sandbox.base_url
    assert settings.timeout == 7 and settings.notebook_id == "1234567890123456789"
    client = session.client()
    assert session.client() is client  # kept while the settings stay the same
    assert client.list_notebooks()
    session.use_token(None)
    assert session.settings().token == "from-the-environment"
    session.close()


def test_a_refused_option_stops_every_call_until_it_is_set_again() -> None:
    options = Options(refused={"base_url": "not a URL"})
    with pytest.raises(InvalidInput, match=r"not a URL \(refused by %config ScnetMagics\.base_url"):
        Session(options).settings()


def test_the_sandbox_points_the_session_at_itself_and_stop_restores_it() -> None:
    options = Options(base_url="https://scnet.example.cn", notebook_id="1234567890123456789")
    session = Session(options)
    session.use_token("mine")
    sandbox = session.use_sandbox(execute=False)
    try:
        settings = session.settings()
        assert settings.base_url == sandbox.base_url and settings.token == sandbox.token
        assert (settings.login_url, settings.ac_url) == (sandbox.login_url, sandbox.ac_url)
        assert options.notebook_id == sandbox.notebook_id
        assert session.client().notebook(sandbox.notebook_id).id == sandbox.notebook_id
    finally:
        assert session.stop_sandbox()
    assert (options.base_url, options.notebook_id) == (
        "https://scnet.example.cn",
        "1234567890123456789",
    )
    assert (session.token, session.token_origin, session.login_url) == (
        "mine",
        "%scnet_token",
        None,
    )
    assert not session.stop_sandbox()  # none runs any more
    assert "mine" not in repr(session)
