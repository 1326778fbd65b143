"""Signing in with an access key pair, against the sandbox over loopback."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ApiError, ConfigError, InvalidInput, LoginError, ScnetClient
from scnet_magic.account import (
    CLOCK_HINT,
    KEYS_HINT,
    AccountApi,
    Credentials,
    renew_token,
    request_account,
    sign,
    sign_in,
    signed_text,
    token_state,
)
from scnet_magic.cli import build_parser
from scnet_magic.cli import main as cli_main
from scnet_magic.cli.verbs import login as login_command
from scnet_magic.config import read_config_file, resolve, resolve_login, save_config
from scnet_magic.endpoints import TOKENS
from scnet_magic.errors import MalformedResponse, TransportError
from scnet_magic.models import Account, Login, Region
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import region_picker
from scnet_magic.transport import MockTransport, Request, Response

from conftest import CANARY, SECRET_CANARY, Terminal, free_port
from frontends import run_scnet

KUNSHAN = "华东一区【昆山】"
XIAN = "西北一区【西安】"
ZHENGZHOU = "华中一区【郑州】"


def test_signature_matches_an_independent_computation() -> None:
    text = '{"accessKey":"AK0123456789","timestamp":"1700000000","user":"alice"}'
    expected = hmac.new(b"s3cr3t-key", text.encode(), hashlib.sha256).hexdigest()
    assert signed_text("alice", "AK0123456789", "1700000000") == text
    assert sign("alice", "AK0123456789", "s3cr3t-key", "1700000000") == expected
    # The same vector written out, so that a change in either computation shows.
    assert expected == "ed5f31460150518b7409db19ca6d727be1061a59087d9a7b5f3ef47330c837e5"
    headers = Credentials("alice", "AK0123456789", "s3cr3t-key").headers("1700000000")
    assert headers == {
        "user": "alice",
        "accessKey": "AK0123456789",
        "timestamp": "1700000000",
        "signature": expected,
    }
    assert "s3cr3t-key" not in repr(Credentials("alice", "AK0123456789", "s3cr3t-key"))


def test_token_request_on_the_wire(login_env: Sandbox) -> None:
    before = int(time.time())
    signed = sign_in(region=KUNSHAN)
    (request, *_rest) = login_env.requests
    assert (request.method, request.path, request.body) == ("POST", "/api/user/v3/tokens", None)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["user"] == login_env.user
    assert headers["accesskey"] == login_env.access_key
    assert before <= int(headers["timestamp"]) <= int(time.time())
    ak, ts = login_env.access_key, headers["timestamp"]
    text = f'{{"accessKey":"{ak}","timestamp":"{ts}","user":"sandbox-user"}}'
    expected = hmac.new(SECRET_CANARY.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert headers["signature"] == expected
    assert "token" not in headers  # no token yet: the request is signed instead
    assert all(SECRET_CANARY not in repr(r) for r in login_env.requests)
    assert signed.region == KUNSHAN and signed.region_id == "11250"
    assert login_env.accepts_token(signed.token)


def test_region_by_name_part_or_id_and_the_address_is_found(login_env: Sandbox) -> None:
    # Kunshan's address is written with a trailing /ai, which is stripped.
    kunshan = sign_in(region="昆山")
    assert (kunshan.region, kunshan.base_url) == (KUNSHAN, login_env.base_url)
    # Xi'an lists a disabled address first and its flag as text: the enabled one is used.
    xian = sign_in(region="11276")
    assert (xian.region, xian.region_id, xian.base_url) == (XIAN, "11276", login_env.base_url)
    assert sign_in(region=KUNSHAN).region_id == "11250"
    center = [r for r in login_env.requests if r.path == "/ac/openapi/v2/center"]
    assert len(center) == 3 and all(r.headers["token"] == "<redacted>" for r in center)


def test_signed_in_client_starts_a_service_with_nothing_configured_by_hand(
    login_env: Sandbox,
) -> None:
    assert resolve().token is None
    with ScnetClient.login(region="昆山") as client:
        assert client.base_url == login_env.base_url
        result = client.start_service(login_env.notebook_id, 1223, "python app.py")
    assert result.pending and result.url


def test_several_regions_and_none_chosen_lists_them(login_env: Sandbox) -> None:
    with pytest.raises(InvalidInput) as info:
        sign_in()
    message = info.value.user_message()
    assert f"{KUNSHAN} (11250)" in message and f"{XIAN} (11276)" in message
    assert "Not offered (no token" in message and ZHENGZHOU in message
    assert "平台" not in message  # the platform-level entry is not a region


def test_a_menu_chooses_among_several_regions_when_none_is_named(login_env: Sandbox) -> None:
    offered: list[list[str]] = []

    def menu(account: Account) -> Region:
        offered.append([region.label for region in account.usable])
        return account.usable[-1]

    assert sign_in(menu=menu).region_id == "11276"
    assert offered == [[f"{KUNSHAN} (11250)", f"{XIAN} (11276)"]]
    assert sign_in(region="昆山", menu=menu).region_id == "11250" and len(offered) == 1


def test_region_without_token_says_why(login_env: Sandbox) -> None:
    with pytest.raises(LoginError, match=r"郑州.*has no token: the account may be suspended"):
        sign_in(region="郑州")


def test_unknown_and_ambiguous_regions(login_env: Sandbox) -> None:
    with pytest.raises(LoginError, match=r"no region '上海'") as info:
        sign_in(region="上海")
    assert KUNSHAN in info.value.hint
    with pytest.raises(InvalidInput, match="matches several regions"):
        sign_in(region="一区")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SCNET_SECRET_KEY", "wrong-secret"), ("SCNET_ACCESS_KEY", "AKwrong"), ("SCNET_USER", "eve")],
)
def test_wrong_keys_are_refused_with_a_hint(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ApiError, match="sign-in refused") as info:
        sign_in(region="昆山")
    assert info.value.hint == KEYS_HINT
    assert "\n" not in info.value.user_message()
    # What the platform was seen answering (scnet-api.md section 5), quoted in the message.
    seen = "用户不存在" if variable == "SCNET_USER" else "AK/SK签名校验失败"
    assert seen in info.value.message


def test_clock_skew_is_refused_with_a_hint(login_env: Sandbox) -> None:
    login_env.clock_skew = 600  # the server's clock ten minutes ahead of this machine's
    with pytest.raises(ApiError, match="timestamp") as info:
        sign_in(region="昆山")
    assert info.value.hint == CLOCK_HINT
    login_env.clock_skew = 200  # within the five minutes the server allows
    assert sign_in(region="昆山").region == KUNSHAN


def test_suspended_account(login_env: Sandbox) -> None:
    login_env.suspended = True
    with pytest.raises(LoginError, match="no region of account sandbox-user has a token") as info:
        sign_in(region="昆山")
    assert "suspended" in str(info.value) and "console" in info.value.hint


def test_region_without_an_enabled_address(login_env: Sandbox) -> None:
    login_env.addresses_enabled = False
    for region in ("昆山", "西安"):
        with pytest.raises(LoginError, match=r"no enabled notebook API address \(aiUrls\)"):
            sign_in(region=region)


def test_renewal_replaces_the_token(login_env: Sandbox) -> None:
    signed = sign_in(region="昆山")
    assert token_state(signed.token).valid
    new = renew_token(signed.token)
    assert new != signed.token
    assert token_state(new).valid
    old_state = token_state(signed.token)
    assert not old_state.valid and "10008" in old_state.detail  # expired, not unknown
    with pytest.raises(ApiError, match="10008") as info:
        renew_token(signed.token)
    assert "sign in again" in info.value.hint
    with pytest.raises(ApiError, match="10008") as info:
        ScnetClient(base_url=login_env.base_url, token=signed.token).list_notebooks()
    assert "expired" in info.value.hint


def test_client_renews_its_own_token(login_env: Sandbox) -> None:
    client = ScnetClient.login(region="西安")
    assert client.token_state().valid
    login_env.clear_log()
    client.renew_token()
    assert client.token_state().valid
    assert client.start_service(login_env.notebook_id, 1223).pending
    assert login_env.requests[0].path == "/ac/openapi/v2/tokens/next"


def test_state_of_an_unknown_token(login_env: Sandbox) -> None:
    state = token_state(CANARY)
    assert not state.valid and CANARY not in state.detail


def test_missing_credentials_say_where_to_put_them(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCNET_SECRET_KEY")
    login_env.clear_log()
    with pytest.raises(ConfigError, match="no SCNet secret key is set") as info:
        sign_in(region="昆山")
    assert "SCNET_SECRET_KEY" in info.value.hint and "secret_key" in info.value.hint
    assert login_env.requests == []


def test_credentials_from_the_config_file_and_the_permission_warning(
    login_env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    isolated_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("SCNET_USER", "SCNET_ACCESS_KEY", "SCNET_SECRET_KEY"):
        monkeypatch.delenv(name)
    isolated_config.write_text(
        f'user = "{login_env.user}"\naccess_key = "{login_env.access_key}"\n'
        f'secret_key = "{SECRET_CANARY}"\n'
    )
    os.chmod(isolated_config, 0o644)
    assert sign_in(region="昆山").region == KUNSHAN
    assert "holds a secret key and other users can read it" in capsys.readouterr().err
    os.chmod(isolated_config, 0o600)
    assert sign_in(region="昆山").region == KUNSHAN
    assert "other users can read it" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SCNET_SECRET_KEY", "abc\r\nX-Evil: 1", "secret key must not contain spaces"),
        ("SCNET_ACCESS_KEY", "密钥", "access key must contain only ASCII"),
        ("SCNET_USER", " ", "account name is empty"),
        ("SCNET_LOGIN_URL", "http://api.scnet.example", "login URL must use https://"),
        ("SCNET_AC_URL", "http://www.scnet.example", "platform URL must use https://"),
        ("SCNET_AC_URL", "www.scnet.cn", "platform URL must start with https://"),
        ("SCNET_AC_URL", "https://user:hunter2@www.scnet.cn", "platform URL must not contain"),
    ],
)
def test_bad_settings_are_refused_before_sending(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    login_env.clear_log()
    with pytest.raises(InvalidInput, match=message) as info:
        sign_in(region="昆山")
    assert variable in str(info.value)  # says where the bad value came from
    assert "X-Evil" not in str(info.value)
    assert login_env.requests == []


def test_unreachable_login_url_names_it() -> None:
    with pytest.raises(TransportError, match="connection refused") as info:
        sign_in("u", "ak", "sk", region="x", login_url=f"http://127.0.0.1:{free_port()}")
    assert "login URL" in info.value.hint


def test_the_token_answer_is_checked(login_env: Sandbox) -> None:
    from scnet_magic.account import _regions, api_base

    with pytest.raises(MalformedResponse, match="expected a list"):
        _regions({"token": CANARY})
    # In JSON's words, as the other answers' checks say it: the server does not speak Python.
    with pytest.raises(MalformedResponse, match="is null, expected a list"):
        _regions(None)
    with pytest.raises(MalformedResponse, match="no 'clusterId'"):
        _regions([{"clusterName": "x", "token": CANARY}])
    with pytest.raises(MalformedResponse, match="not a usable token") as info:
        _regions([{"clusterId": 7, "clusterName": "x", "token": CANARY + " x"}])
    assert CANARY not in str(info.value)
    regions = _regions([{"clusterId": 0, "token": CANARY}, {"clusterId": 7, "token": None}])
    assert [(r.id, r.name, r.token) for r in regions] == [("7", "7", None)]
    assert api_base(" https://ksai.scnet.cn:58043/ai/ ") == "https://ksai.scnet.cn:58043"
    with pytest.raises(MalformedResponse, match="must use https"):
        api_base("http://ksai.scnet.cn/ai")


def test_save_keeps_other_keys_and_is_owner_only(isolated_config: Path) -> None:
    isolated_config.write_text(
        '# my settings\nnotebook_id = "1896050410550136833"\ntoken = "old"\n'
    )
    os.chmod(isolated_config, 0o644)
    save_config({"token": "eyJnew.a.b", "base_url": "https://ksai.scnet.cn:58043"})
    text = isolated_config.read_text()
    assert text.startswith("# my settings\n")
    assert read_config_file() == {
        "notebook_id": "1896050410550136833",
        "token": "eyJnew.a.b",
        "base_url": "https://ksai.scnet.cn:58043",
    }
    assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
    assert sorted(p.name for p in isolated_config.parent.iterdir()) == [isolated_config.name]


def test_save_refuses_to_overwrite_a_broken_file(isolated_config: Path) -> None:
    isolated_config.write_text("token = [unclosed\n")
    with pytest.raises(ConfigError, match="cannot update config file"):
        save_config({"token": "eyJnew.a.b"})
    assert isolated_config.read_text() == "token = [unclosed\n"


def test_region_picker_signs_in_to_the_chosen_region(login_env: Sandbox) -> None:
    account = request_account(resolve_login())
    chosen: list[Login] = []

    def on_login(signed: Login) -> str:
        chosen.append(signed)
        return signed.describe()

    box = region_picker(account, on_login)
    dropdown, message = box.children
    assert [label for label, _id in dropdown.options] == [f"{KUNSHAN} (11250)", f"{XIAN} (11276)"]
    assert dropdown.value is None and ZHENGZHOU in message.value
    dropdown.value = "11276"
    assert [c.region for c in chosen] == [XIAN]
    assert "Signed in as sandbox-user" in message.value
    state = json.dumps([dropdown.get_state(), message.get_state()], default=str)
    assert chosen[0].token not in state and SECRET_CANARY not in state
    login_env.addresses_enabled = False
    dropdown.value = "11250"
    assert len(chosen) == 1 and "no enabled notebook API address" in message.value


# -- the scnet login command ------------------------------------------------------------------


def run_cli(*argv: str, stdin: str = "", terminal: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    parser = build_parser()
    typed = Terminal(stdin) if terminal else io.StringIO(stdin)
    code = login_command(parser.parse_args(["login", *argv]), stdin=typed, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_at_a_terminal_offers_the_numbered_region_menu(
    login_env: Sandbox, isolated_config: Path
) -> None:
    code, out, err = run_cli("--save", terminal=True, stdin="西安\n")
    assert code == 0, err
    assert "sandbox-user has 2 regions:" in out and "Region number (1-2): " in out
    assert f"region {XIAN} (11276)" in out and read_config_file()["region"] == XIAN
    code, _out, err = run_cli()  # not at a terminal: refused, naming --region
    assert code == 2 and "choose one with --region" in err


def test_cli_signs_in_saves_and_later_calls_use_it(
    login_env: Sandbox, isolated_config: Path
) -> None:
    # A real process, as a user would run it; the start then uses only the saved file.
    done = subprocess.run(
        [sys.executable, "-m", "scnet_magic", "login", "--region", "昆山", "--save"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert f"region {KUNSHAN} (11250)" in done.stdout and "Saved to" in done.stdout
    saved = read_config_file()
    assert saved["base_url"] == login_env.base_url and saved["region"] == KUNSHAN
    assert login_env.accepts_token(saved["token"])
    assert saved["token"] not in done.stdout + done.stderr
    assert SECRET_CANARY not in isolated_config.read_text() + done.stdout + done.stderr
    assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
    with ScnetClient() as client:
        assert client.start_service(login_env.notebook_id, 1223).pending

    code, out, err = run_cli("--status")
    assert code == 0, err
    assert f"Region: {KUNSHAN}" in out and "Account: sandbox-user" in out
    assert f"Address: {login_env.base_url}" in out and "Token: valid." in out
    assert saved["token"] not in out

    code, out, _err = run_cli("--renew", "--json")
    assert code == 0 and json.loads(out)["renewed"] is True
    assert read_config_file()["token"] != saved["token"]
    assert run_cli("--status")[0] == 0


def test_cli_json_secret_key_from_stdin_and_exit_codes(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCNET_SECRET_KEY")
    code, out, err = run_cli(
        "--region", "11276", "--json", "--secret-key-stdin", stdin=SECRET_CANARY
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["region"] == XIAN and result["base_url"] == login_env.base_url
    assert "token" not in result and SECRET_CANARY not in out

    code, out, err = run_cli("--region", "11276")  # no secret key, no terminal to ask on
    assert code == 2 and "No SCNet secret key is set" in err

    code, _out, err = run_cli("--secret-key-stdin", stdin=SECRET_CANARY)  # several regions
    assert code == 2 and KUNSHAN in err and XIAN in err

    code, _out, err = run_cli("--region", "昆山", "--secret-key-stdin", stdin="wrong\n")
    assert code == 1 and "Sign-in refused" in err and "access control" in err

    code, _out, err = run_cli("--status", "--renew")
    assert code == 2 and err == "scnet: error: --status takes no other option but --json.\n"


def test_cli_errors_read_as_every_scnet_verb_s(login_env: Sandbox, isolated_config: Path) -> None:
    run = run_scnet(["login", "--region", "昆山"], {"SCNET_USER": ""})
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "scnet: error: No SCNet account name is set.",
        f'hint: Set SCNET_USER, or put user = "…" in the config file ({isolated_config}).',
    ]


def test_cli_status_without_a_token(login_env: Sandbox) -> None:
    code, out, _err = run_cli("--status")
    assert code == 1 and "Not signed in: run scnet login." in out
    assert cli_main(["login", "--status"]) == 1


# -- the secret key never shows --------------------------------------------------------------


def test_secret_key_and_tokens_never_in_output_errors_logs_or_files(
    login_env: Sandbox,
    isolated_config: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts: list[str] = []  # everything shown, raised or logged; the token must not be in them

    def failure(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except Exception as exc:
            texts.extend([str(exc), repr(exc), getattr(exc, "hint", "")])
            cause: BaseException | None = exc
            while cause is not None:
                texts.append(repr(cause))
                cause = cause.__cause__ or cause.__context__
        else:
            raise AssertionError("expected a failure")

    signed = sign_in(region="昆山")
    texts += [repr(signed), signed.describe(), json.dumps(signed.to_dict(), ensure_ascii=False)]
    account = request_account(resolve_login())
    texts += [repr(account), account.unusable_note(), repr(AccountApi(login_env.base_url))]
    texts += [repr(resolve_login())]
    failure(lambda: sign_in())
    failure(lambda: sign_in(region="郑州"))
    login_env.clock_skew = 900
    failure(lambda: sign_in(region="昆山"))
    login_env.clock_skew = 0
    login_env.suspended = True
    failure(lambda: sign_in(region="昆山"))
    login_env.suspended = False
    monkeypatch.setenv("SCNET_SECRET_KEY", SECRET_CANARY + " x")
    failure(lambda: sign_in(region="昆山"))
    monkeypatch.setenv("SCNET_SECRET_KEY", SECRET_CANARY)
    texts += list(run_cli("--region", "昆山", "--json", "--save")[1:])
    texts += [record.getMessage() for record in debug_logs.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert debug_logs.records, "expected DEBUG records from the client and urllib3"
    issued = [signed.token, *(r.token for r in account.regions if r.token)]
    for text in texts:
        assert SECRET_CANARY not in text
        assert not any(token in text for token in issued)
    saved = isolated_config.read_text()
    assert SECRET_CANARY not in saved and "secret" not in saved


def test_the_secret_key_is_hidden_in_verbose_tracebacks(
    ip: InteractiveShell, login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``%xmode Verbose`` shows the variables of every frame, ``ScnetClient.login``'s too (and
    a token handed to ``ScnetClient`` itself)."""
    secrets = iter([SECRET_CANARY, CANARY])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(secrets))
    cells = [
        "import getpass\nfrom scnet_magic import ScnetClient\n"
        f"ScnetClient.login({login_env.user!r}, {login_env.access_key!r}, getpass.getpass(), "
        "region='nowhere')",
        "ScnetClient(base_url='ftp://x', token=getpass.getpass())",
    ]
    mode = ip.InteractiveTB.mode
    try:
        ip.run_line_magic("xmode", "Verbose")
        with capture_output() as out:
            for cell in cells:
                ip.run_cell(cell)
    finally:
        ip.run_line_magic("xmode", mode)
    shown = out.stdout + out.stderr
    assert "LoginError" in shown and "secret_key" in shown
    assert "InvalidInput" in shown and "token" in shown
    assert SECRET_CANARY not in shown and CANARY not in shown


def test_sign_in_answer_shapes_in_memory() -> None:
    """The account calls take a transport too: a token answer of the wrong shape, in memory."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response.json({"code": "0", "msg": "success", "data": "not a list"})

    with pytest.raises(MalformedResponse, match="'data' of the token answer is a string"):
        ScnetClient.login(
            "someone",
            "AK-1",
            SECRET_CANARY,
            login_url="https://login.example",
            ac_url="https://ac.example",
            transport=MockTransport(handler),
        )
    (request,) = seen
    assert (request.method, request.url) == ("POST", "https://login.example" + TOKENS.path)
    assert request.headers["accessKey"] == "AK-1" and len(request.headers["signature"]) == 64
    assert SECRET_CANARY not in repr(request) + str(dict(request.headers))


def test_a_region_name_with_braces_is_shown_as_it_came() -> None:
    """Region names come from the platform: the hint that lists them is not a template."""
    regions = (Region("华东{1}区", "11", "t1"), Region("华北{name}", "12", "t2"))
    account = Account("someone", "https://login.example", 5.0, regions)
    with pytest.raises(LoginError) as info:
        account.choose("nowhere")
    assert "华东{1}区 (11)" in info.value.hint and "华北{name} (12)" in info.value.user_message()
    closed = Account(
        "someone", "https://login.example", 5.0, (*regions, Region("西{0}", "13", None))
    )
    with pytest.raises(InvalidInput) as several:
        closed.choose(None)
    assert "西{0} (13)" in several.value.user_message()


def test_a_key_given_to_secret_key_stdin_on_the_line_is_refused_unquoted() -> None:
    run = run_scnet(["login", f"--secret-key-stdin={SECRET_CANARY}"])
    assert run.returncode == 2 and "--secret-key-stdin takes no value" in run.stderr
    assert SECRET_CANARY not in run.stdout + run.stderr
