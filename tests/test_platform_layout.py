"""The platform's layout: three hosts, region tokens, and the answers the platform really gives.

The sandbox serves the login host, the platform host (``/ac/...``) and the region's AI address
on three loopback ports, and records which port got each call, so these tests catch a call
sent to the wrong host or with the wrong token (scnet-api.md, section 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sandbox_faults import FaultySandbox, token_tag

from scnet_magic import ApiError, HttpError, LoginError, ScnetClient, TransportError
from scnet_magic.account import renew_token, renewed_token, sign_in, token_state
from scnet_magic.cli import main as cli_main
from scnet_magic.config import read_config_file
from scnet_magic.magics.core import ScnetMagics
from scnet_magic.sandbox import Sandbox

from conftest import free_port, said

TOKENS = "/api/user/v3/tokens"
CENTER = "/ac/openapi/v2/center"
RENEW = "/ac/openapi/v2/tokens/next"
STATE = "/ac/openapi/v2/tokens/state"
BOOT = "/ac/openapi/v2/notebook/actions/start"
LIST = "/ai/openapi/v2/notebook/list"
START = "/ai/openapi/v2/notebook/customize-service/actions/start"
KUNSHAN = "华东一区【昆山】"
XIAN = "西北一区【西安】"


def magics(ip: InteractiveShell) -> ScnetMagics:
    found = ip.magics_manager.registry["ScnetMagics"]
    assert isinstance(found, ScnetMagics)
    return found


def calls(sb: Sandbox) -> list[tuple[str, str]]:
    return [(r.role, r.path) for r in sb.requests]


# -- the three hosts --------------------------------------------------------------------------


def test_sign_in_goes_through_three_ports_with_the_right_token_at_each(login_env: Sandbox) -> None:
    sb = login_env
    assert len({sb.login_url, sb.ac_url, sb.base_url}) == 3
    signed = sign_in(region="昆山")
    # tokens → center → the first notebook call, each at its own host.
    assert calls(sb) == [("login", TOKENS), ("platform", CENTER), ("ai", LIST)]
    tokens, center, first = sb.requests
    assert tokens.token_tag is None  # signed headers, no token yet
    # The region's token at the platform host, and the same one at the AI address.
    assert center.token_tag == first.token_tag == token_tag(signed.token)
    assert (signed.region_id, signed.base_url) == ("11250", sb.base_url)
    assert (signed.login_url, signed.ac_url) == (sb.login_url, sb.ac_url)

    sb.clear_log()
    with ScnetClient(base_url=signed.base_url, token=signed.token) as client:
        assert client.start_service(sb.notebook_id, 1223).pending
        assert client.token_state().valid
        client.renew_token()
    assert calls(sb) == [("ai", START), ("platform", STATE), ("platform", RENEW)]


def test_a_client_keeps_the_platform_address_it_was_given(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ac_url`` given to the client (or to its sign-in) is where its renewal and token check
    go, whatever the environment says."""
    sb = login_env
    monkeypatch.setenv("SCNET_AC_URL", sb.login_url)  # a wrong address the client must not use
    with ScnetClient.login(region="昆山", ac_url=sb.ac_url) as client:
        assert client.settings.ac_url == sb.ac_url
        sb.clear_log()
        assert client.token_state().valid
        client.renew_token()
    assert calls(sb) == [("platform", STATE), ("platform", RENEW)]

    signed = sign_in(region="昆山", ac_url=sb.ac_url)
    sb.clear_log()
    with ScnetClient(base_url=signed.base_url, token=signed.token, ac_url=sb.ac_url) as client:
        assert client.token_state().valid
    assert calls(sb) == [("platform", STATE)]


def test_a_boot_at_a_wrong_or_dead_platform_address_names_scnet_ac_url(
    login_env: Sandbox,
) -> None:
    """Booting goes to the platform host: its failures name that setting, not the base URL."""
    sb = login_env
    signed = sign_in(region="昆山")
    wrong_host = ScnetClient(base_url=signed.base_url, token=signed.token, ac_url=sb.login_url)
    with wrong_host, pytest.raises((HttpError, ApiError)) as wrong:
        wrong_host.boot_notebook(sb.notebook_id)
    assert isinstance(wrong.value, (HttpError, ApiError)) and wrong.value.status == 404
    assert "SCNET_AC_URL" in wrong.value.hint and sb.login_url in wrong.value.hint
    assert BOOT in str(wrong.value)

    dead = f"http://127.0.0.1:{free_port()}"
    with ScnetClient(base_url=signed.base_url, token=signed.token, ac_url=dead) as client:
        for call in (lambda: client.boot_notebook(sb.notebook_id), client.token_state):
            with pytest.raises(TransportError) as unreachable:
                call()
            assert "the platform address (SCNET_AC_URL)" in unreachable.value.hint


def test_the_session_s_client_follows_a_changed_platform_address(
    ip: InteractiveShell, login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The magics keep one client while the settings stay the same: a new SCNET_AC_URL is a
    new client, so booting goes to the new address."""
    signed = sign_in(region="昆山")
    monkeypatch.setenv("SCNET_BASE_URL", signed.base_url)
    monkeypatch.setenv("SCNET_TOKEN", signed.token)
    session = magics(ip).session
    first = session.client()
    assert session.client() is first and first.settings.ac_url == login_env.ac_url
    monkeypatch.setenv("SCNET_AC_URL", login_env.login_url)
    assert session.client().settings.ac_url == login_env.login_url


def test_the_platform_url_setting_is_obeyed(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Region discovery sent to the login host (the first defect) finds nothing there."""
    monkeypatch.setenv("SCNET_AC_URL", login_env.login_url)
    with pytest.raises((HttpError, ApiError)) as info:
        sign_in(region="昆山")
    assert isinstance(info.value, (HttpError, ApiError)) and info.value.status == 404
    assert "SCNET_AC_URL" in info.value.hint and login_env.login_url in info.value.hint
    assert calls(login_env) == [("login", TOKENS), ("login", CENTER)]


@pytest.mark.parametrize(
    ("path", "method"),
    [(TOKENS, "POST"), (CENTER, "GET"), (RENEW, "POST"), (STATE, "GET"), (LIST, "GET")],
)
def test_every_endpoint_is_unknown_on_the_other_hosts(
    sandbox: Sandbox, path: str, method: str
) -> None:
    own = "login" if path == TOKENS else "platform" if path.startswith("/ac/") else "ai"
    urls = {"login": sandbox.login_url, "platform": sandbox.ac_url, "ai": sandbox.base_url}
    for role, url in urls.items():
        answer = requests.request(method, url + path, headers={"token": sandbox.token}, timeout=5)
        if role == own:
            assert answer.status_code == 200, (role, path)
        else:
            assert answer.status_code == 404, (role, path)
            assert answer.json() == {"code": "10001", "msg": f"接口不存在: {path}", "data": None}
    assert [r.role for r in sandbox.requests] == list(urls)


def test_the_platform_token_is_no_region_token(sandbox: Sandbox) -> None:
    platform = sandbox.issue_token("0")
    for method, url in [
        ("GET", sandbox.ac_url + CENTER),
        ("POST", sandbox.ac_url + RENEW),
        ("GET", sandbox.ac_url + STATE),
    ]:
        answer = requests.request(method, url, headers={"token": platform}, timeout=5).json()
        assert answer["code"] == "10001", url  # as the center call answers it on SCNet
    for method, path in [("GET", LIST), ("POST", START)]:
        answer = requests.request(
            method, sandbox.base_url + path, headers={"token": platform}, json={}, timeout=5
        ).json()
        assert answer["code"] == "10009", path
    # The region's own token works at both.
    region = sandbox.issue_token("11250")
    for url in (sandbox.ac_url + CENTER, sandbox.base_url + LIST):
        assert requests.get(url, headers={"token": region}, timeout=5).json()["code"] == "0"


def test_sign_in_never_uses_the_platform_token(login_env: Sandbox) -> None:
    for region in ("昆山", "西安"):
        signed = sign_in(region=region)
        sent = [r.token_tag for r in login_env.requests if r.role != "login"]
        assert sent and set(sent) == {token_tag(signed.token)}
        login_env.clear_log()


def test_an_address_without_an_enable_flag_is_used(login_env: Sandbox) -> None:
    """The second defect: Kunshan's only aiUrls entry has no enable flag, and is usable."""
    region = login_env.issue_token("11250")
    center = requests.get(login_env.ac_url + CENTER, headers={"token": region}, timeout=5)
    assert center.json()["data"]["aiUrls"] == [{"url": login_env.base_url + "/ai"}]
    assert sign_in(region="昆山").base_url == login_env.base_url


def test_renewal_answers_the_documented_array(login_env: Sandbox) -> None:
    """The third defect: the renewal answer is a list of entries holding the token."""
    signed = sign_in(region="西安")
    new = renew_token(signed.token)
    assert new != signed.token and token_state(new).valid
    # What the sandbox answered: the array, its entry naming the region.
    answer = requests.post(login_env.ac_url + RENEW, headers={"token": new}, timeout=5).json()
    assert isinstance(answer["data"], list) and answer["data"][0]["clusterId"] == "11276"


def test_a_renewal_listing_several_regions_for_a_token_of_no_known_region_is_refused(
    login_env: Sandbox,
) -> None:
    """A token given as it is (no sign-in, no config file naming its region): guessing could
    save another region's token, which this address refuses. Nothing is replaced."""
    token = login_env.issue_token("11276")
    login_env.answers[RENEW] = ok(RENEWAL_ROWS["several regions"](login_env, "unused"))
    client = ScnetClient(base_url=login_env.base_url, token=token, ac_url=login_env.ac_url)
    with pytest.raises(LoginError) as info:
        client.renew_token()
    assert str(info.value).startswith(
        f"the renewal answer lists the tokens of several regions ({KUNSHAN}, {XIAN}), and this "
        "token's region is not known"
    )
    assert "--region NAME" in info.value.hint
    login_env.answers.clear()
    assert client.token_state().valid  # the old token is kept


@pytest.mark.parametrize(
    ("data", "region", "expected"),
    [
        (
            [{"clusterId": 0, "clusterName": "ac", "token": "P"}, {"clusterId": 1, "token": "R"}],
            None,
            "R",
        ),
        (
            [
                {"clusterId": "1", "clusterName": "甲", "token": "A"},
                {"clusterId": "2", "clusterName": "乙", "token": "B"},
            ],
            "乙",
            "B",
        ),
        (
            [
                {"clusterId": "1", "clusterName": "甲", "token": "A"},
                {"clusterId": "2", "clusterName": "乙", "token": "B"},
            ],
            "2",
            "B",
        ),
        (["A", "B"], None, "A"),  # entries that name no region: the first
        ([{"name": "甲", "token": "A"}, {"name": "乙", "token": "B"}], "乙", "B"),  # by "name"
        ([{"token": "A"}], "9", "A"),  # one entry: it, whatever it names
        ([{"clusterId": 0, "token": "P"}], None, None),  # the platform's alone: no token
    ],
)
def test_renewed_token_picks_the_region_s_entry(
    data: object, region: str | None, expected: str | None
) -> None:
    assert renewed_token(data, region) == expected


def test_an_ai_address_without_notebook_apis_is_named_at_sign_in(login_env: Sandbox) -> None:
    # A region whose aiUrls entry is a gateway that answers 404 for /ai/... (HPC-only): the
    # login host plays one, since it serves no /ai/ path.
    login_env.answers[CENTER] = ok({"aiUrls": [{"url": login_env.login_url, "enable": "true"}]})
    with pytest.raises(LoginError, match="answered 404 Not Found") as info:
        sign_in(region="昆山")
    assert login_env.login_url in str(info.value) and KUNSHAN in str(info.value)
    assert "serves no notebook API" in info.value.hint and "HPC" in info.value.hint
    assert calls(login_env)[-1] == ("login", LIST)


def test_sandbox_front_ends_point_sign_in_at_the_sandbox(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scnet_magic.sandbox.Sandbox", FaultySandbox)  # to see its calls
    with capture_output() as out:
        sb = ip.run_line_magic("scnet_sandbox", "")
    try:
        assert sb.base_url in said(out)
        settings = magics(ip).session.settings()
        assert (settings.login_url, settings.ac_url) == (sb.login_url, sb.ac_url)
        monkeypatch.setenv("SCNET_USER", sb.user)
        monkeypatch.setenv("SCNET_ACCESS_KEY", sb.access_key)
        monkeypatch.setenv("SCNET_SECRET_KEY", sb.secret_key)
        with capture_output() as signed:
            ip.run_line_magic("scnet_login", "--region 昆山")
        assert f"Address: {sb.base_url}" in said(signed)
        assert calls(sb)[:3] == [("login", TOKENS), ("platform", CENTER), ("ai", LIST)]
        with capture_output() as status:
            ip.run_line_magic("scnet_login", "--status")
        assert f"Platform address (renewal, token check): {sb.ac_url}" in said(status)
        assert f"Login address (sign-in): {sb.login_url}" in said(status)
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")
    settings = magics(ip).session.settings()
    assert (settings.login_url, settings.ac_url) == ("https://api.scnet.cn", "https://www.scnet.cn")


# -- contract tests: the platform's own shapes -----------------------------------------------
#
# Each row is an answer the documentation gives or a public client reports, with its source;
# the sandbox plays it (Sandbox.answers) and every front end must take it. Tokens and
# addresses are filled in from the sandbox, so that the flow can go on after the answer.


def ok(data: object) -> dict[str, object]:
    return {"code": "0", "msg": "success", "data": data}


Row = Callable[[Sandbox], dict[str, object]]


def region_entry(sb: Sandbox, ai_urls: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": "11250",
        "name": KUNSHAN,
        "aiUrls": ai_urls,
        "hpcUrls": [{"url": "https://hpc.example.invalid:58043", "enable": "true"}],
        "efileUrls": [{"url": "https://efile.example.invalid:58043", "enable": "true"}],
    }


TOKEN_ROWS: dict[str, Row] = {
    # get-user-tokens-aksk.html: data is a list of {clusterId, clusterName, token}, the
    # platform's own entry first (clusterId 0, clusterName "ac"), ids as text.
    "documented": lambda sb: ok(
        [
            {"clusterId": "0", "clusterName": "ac", "token": sb.issue_token("0")},
            {"clusterId": "11250", "clusterName": KUNSHAN, "token": sb.issue_token("11250")},
        ]
    ),
    # lql341/scnet-hpc scripts/scnet_sdk/client.py: compares str(clusterId), so ids may be
    # numbers; it skips clusterId 0.
    "ids as numbers": lambda sb: ok(
        [
            {"clusterId": 0, "clusterName": "ac", "token": sb.issue_token("0")},
            {"clusterId": 11250, "clusterName": KUNSHAN, "token": sb.issue_token("11250")},
        ]
    ),
    # wiltonMotta/scnet-chat scripts/user.py: entries carry more fields (a "default" flag) and
    # the platform entry is told by clusterName "ac".
    "extra fields": lambda sb: ok(
        [
            {"clusterId": "0", "clusterName": "ac", "token": sb.issue_token("0")},
            {
                "clusterId": 11250,
                "clusterName": KUNSHAN,
                "token": sb.issue_token("11250"),
                "default": True,
            },
        ]
    ),
    # scnet-api.md section 5: a region whose account is suspended has token null.
    "a suspended region": lambda sb: ok(
        [
            {"clusterId": "0", "clusterName": "ac", "token": sb.issue_token("0")},
            {"clusterId": "11300", "clusterName": "华中一区【郑州】", "token": None},
            {"clusterId": "11250", "clusterName": KUNSHAN, "token": sb.issue_token("11250")},
        ]
    ),
}

CENTER_ROWS: dict[str, Row] = {
    # get-center-info.html: data documented as a list of region entries, enable as text.
    "documented list": lambda sb: ok(
        [region_entry(sb, [{"url": sb.base_url + "/ai", "enable": "true"}])]
    ),
    # lql341/scnet-hpc scripts/scnet_sdk/client.py (center()): one object, not a list.
    "one object": lambda sb: ok(region_entry(sb, [{"url": sb.base_url, "enable": "true"}])),
    # lql341/scnet-hpc scripts/scnet_sdk/client.py (enabled_url): a missing enable counts as
    # "true"; get-center-info.html asks to check the flag only when several URLs are given.
    "no enable flag": lambda sb: ok(region_entry(sb, [{"url": sb.base_url + "/ai"}])),
    # scnet-api.md section 5: enable seen as a boolean too.
    "enable as a boolean": lambda sb: ok(region_entry(sb, [{"url": sb.base_url, "enable": True}])),
    # get-center-info.html: with several URLs, the first enabled one.
    "a disabled address first": lambda sb: ok(
        region_entry(
            sb,
            [
                {"url": "https://off.example.invalid:58043/ai", "enable": "false"},
                {"url": sb.base_url + "/ai/", "enable": "true"},
            ],
        )
    ),
}


@pytest.fixture
def sign_in_through(
    request: pytest.FixtureRequest, ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> Callable[[], str]:
    """Sign in to Kunshan through one front end; returns the AI address it ended up with."""

    def api() -> str:
        with ScnetClient.login(region="昆山") as client:
            return client.base_url

    def magic() -> str:
        try:
            with capture_output():
                ip.run_line_magic("scnet_login", "--region 昆山")
            return str(magics(ip).base_url)
        finally:
            magics(ip).base_url = None

    def command() -> str:
        code = cli_main(["login", "--region", "昆山", "--json", "--save"])
        out = capsys.readouterr().out
        assert code == 0, out
        base_url = json.loads(out)["base_url"]
        assert read_config_file()["base_url"] == base_url
        return str(base_url)

    return {"api": api, "magic": magic, "command": command}[request.param]


FRONT_ENDS = ["api", "magic", "command"]
Capsys = pytest.CaptureFixture[str]


@pytest.mark.parametrize("sign_in_through", FRONT_ENDS, indirect=True)
@pytest.mark.parametrize("row", sorted(TOKEN_ROWS))
def test_token_answers(login_env: Sandbox, sign_in_through: Callable[[], str], row: str) -> None:
    login_env.answers[TOKENS] = TOKEN_ROWS[row](login_env)
    assert sign_in_through() == login_env.base_url
    assert [r.role for r in login_env.requests] == ["login", "platform", "ai"]


@pytest.mark.parametrize("sign_in_through", FRONT_ENDS, indirect=True)
@pytest.mark.parametrize("row", sorted(CENTER_ROWS))
def test_center_answers(login_env: Sandbox, sign_in_through: Callable[[], str], row: str) -> None:
    login_env.answers[CENTER] = CENTER_ROWS[row](login_env)
    assert sign_in_through() == login_env.base_url


# Renewal answers: (sandbox, the new token) -> data.
RENEWAL_ROWS: dict[str, Callable[[Sandbox, str], object]] = {
    # renewal-token.html: data is an array ("区域信息列表") of entries holding token.
    "documented array": lambda sb, new: [{"clusterId": "11276", "clusterName": XIAN, "token": new}],
    # scnet-api.md section 5: a public client reads a bare string.
    "bare string": lambda sb, new: new,
    # scnet-api.md section 5: an object holding token.
    "object": lambda sb, new: {"token": new},
    # renewal-token.html: an array of several regions; the current region's entry counts (the
    # front ends know it: from this sign-in, or from the config file that saved it).
    "several regions": lambda sb, new: [
        {"clusterId": 11250, "clusterName": KUNSHAN, "token": sb.issue_token("11250")},
        {"clusterId": 11276, "clusterName": XIAN, "token": new},
    ],
    # As the token answer lists them: the platform's own token (clusterId 0) first, never a
    # region's (scnet-api.md section 5).
    "platform entry first": lambda sb, new: [
        {"clusterId": 0, "clusterName": "ac", "token": sb.issue_token("0")},
        {"clusterId": "11276", "clusterName": XIAN, "token": new},
    ],
}


def each_front_end_and_row(rows: dict[str, Any]) -> Callable[[Callable[..., None]], Any]:
    """Run a test once per front end and per row of ``rows``."""

    def decorate(test: Callable[..., None]) -> Any:
        by_row = pytest.mark.parametrize("row", sorted(rows))(test)
        return pytest.mark.parametrize("front_end", FRONT_ENDS)(by_row)

    return decorate


@each_front_end_and_row(RENEWAL_ROWS)
def test_renewal_answers(
    login_env: Sandbox, ip: InteractiveShell, capsys: Capsys, front_end: str, row: str
) -> None:
    new = login_env.issue_token("11276")
    renewed: str | None
    if front_end == "api":
        with ScnetClient.login(region="西安") as client:
            login_env.answers[RENEW] = ok(RENEWAL_ROWS[row](login_env, new))
            client.renew_token()
            login_env.answers.clear()
            assert client.token_state().valid
            assert client.start_service(login_env.notebook_id, 1223).pending
            carried = login_env.requests[-1].token_tag
            renewed = new if carried == token_tag(new) else f"another token ({carried})"
    elif front_end == "magic":
        try:
            with capture_output():
                ip.run_line_magic("scnet_login", "--region 西安")
                login_env.answers[RENEW] = ok(RENEWAL_ROWS[row](login_env, new))
                ip.run_line_magic("scnet_login", "--renew")
            renewed = magics(ip).session.token
        finally:
            magics(ip).base_url = None
    else:
        assert cli_main(["login", "--region", "西安", "--save"]) == 0
        login_env.answers[RENEW] = ok(RENEWAL_ROWS[row](login_env, new))
        assert cli_main(["login", "--renew"]) == 0
        renewed = read_config_file()["token"]
        capsys.readouterr()
    assert renewed == new
    assert login_env.requests[-1].role in ("platform", "ai")


STATE_ROWS: dict[str, tuple[dict[str, object], bool]] = {
    # get-token-state.html: data "token is valid" for a valid token.
    "documented valid": (ok("token is valid"), True),
    # scnet-api.md error table: third-party clients report 10008 for an expired token.
    "expired (10008)": ({"code": "10008", "msg": "权限不足", "data": None}, False),
    # scnet-api.md error table: 10009 for a token the platform does not know.
    "unknown (10009)": ({"code": "10009", "msg": "没有权限访问接口", "data": None}, False),
}


@each_front_end_and_row(STATE_ROWS)
def test_token_state_answers(
    login_env: Sandbox, ip: InteractiveShell, capsys: Capsys, front_end: str, row: str
) -> None:
    answer, valid = STATE_ROWS[row]
    if front_end == "api":
        with ScnetClient.login(region="昆山") as client:
            login_env.answers[STATE] = answer
            assert client.token_state().valid is valid
    elif front_end == "magic":
        try:
            with capture_output() as status:
                ip.run_line_magic("scnet_login", "--region 昆山")
                login_env.answers[STATE] = answer
                ip.run_line_magic("scnet_login", "--status")
            assert ("Token: valid." in said(status)) is valid
        finally:
            magics(ip).base_url = None
    else:
        assert cli_main(["login", "--region", "昆山", "--save"]) == 0
        login_env.answers[STATE] = answer
        assert (cli_main(["login", "--status", "--json"]) == 0) is valid
        out = capsys.readouterr().out
        shown = json.loads(out[out.index("{") :])  # after the sign-in's own lines
        assert shown["token_valid"] is valid
        assert (shown["login_url"], shown["ac_url"], shown["base_url"]) == (
            login_env.login_url,
            login_env.ac_url,
            login_env.base_url,
        )
    assert login_env.requests[-1].path == STATE
    assert login_env.requests[-1].role == "platform"
