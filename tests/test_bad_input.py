"""Bad input through every front end: one clear line naming the field and the rule, and
nothing sent (the sandbox receives no request at all)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from IPython.core.error import UsageError
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import InvalidInput, ScnetClient, ScnetError

from conftest import CANARY
from frontends import (
    FRONT_ENDS,
    SETTINGS_FRONT_ENDS,
    ApiFrontEnd,
    FrontEnd,
    MagicFrontEnd,
    Outcome,
    SettingsFrontEnd,
    Target,
    assert_reads_as_sentences,
    check_shown_as_refused,
    front_end_cases,
    run_scnet,
    shown_error_lines,
)

ID = Sandbox.notebook_id
PORT_RULE = "Port must be a whole number from 1 to 65535"
ID_RULE = "Notebook id must contain only digits"


@dataclass(frozen=True)
class Bad:
    """Values as a user gives them (None: not given), and what the one line must say."""

    says: str  # a pattern: the field and the rule
    notebook_id: str | None = ID
    port: str | None = "1223"
    command: str | None = "python app.py"


# Values every front end takes: typed on the magic line, in the cell, passed to the API.
FIELD_CASES: dict[str, Bad] = {
    "port 0": Bad(r"^Port must be from 1 to 65535, got 0\b", port="0"),
    "port 65536": Bad(r"^Port must be from 1 to 65535, got 65536\b", port="65536"),
    "port -1": Bad(rf"^{PORT_RULE}, got '-1'", port="-1"),
    "port abc": Bad(rf"^{PORT_RULE}, got 'abc'", port="abc"),
    "port 12.5": Bad(rf"^{PORT_RULE}, got '12.5'", port="12.5"),
    "port 1e3": Bad(rf"^{PORT_RULE}, got '1e3'", port="1e3"),
    "port empty": Bad(rf"^{PORT_RULE}, got ''", port=""),
    "port blank": Bad(rf"^{PORT_RULE}, got '  '", port="  "),
    "port hex": Bad(rf"^{PORT_RULE}, got '0x50'", port="0x50"),
    "port full-width digits": Bad(rf"^{PORT_RULE}, got '８０'", port="８０"),
    "port 5000 digits": Bad(
        r"^Port must be from 1 to 65535, got '9{59}…(\.$|\. )", port="9" * 5000
    ),
    "id empty": Bad(r"^Notebook id is empty", notebook_id=""),
    "id with letters": Bad(rf"^{ID_RULE}, got '18960504105501368ab'", "18960504105501368ab"),
    "id with inner spaces": Bad(rf"^{ID_RULE}, got '1896050 410550136833'", "1896050 410550136833"),
    "id negative": Bad(rf"^{ID_RULE}, got '-1896050410550136833'", "-1896050410550136833"),
    "id as a float": Bad(rf"^{ID_RULE}, got '1.896050410550137e\+18'", "1.896050410550137e+18"),
    "id in Arabic-Indic digits": Bad(rf"^{ID_RULE}, got '١٢٣'", "١٢٣"),
    "id of 5000 digits": Bad(r"^Notebook id is too long \(more than 100 digits\)", "1" * 5000),
    "id of 5000 letters": Bad(rf"^{ID_RULE}, got 'a{{59}}…(\.$|\. )", "a" * 5000),
    "command blank": Bad(r"^Command is empty", command="   "),
    "command tab": Bad(r"^Command is empty", command="\t"),
}

# Python values only the API can be given.
API_CASES: dict[str, tuple[object, object, object, str]] = {
    "port int 0": (ID, 0, None, r"^Port must be from 1 to 65535, got 0\.$"),
    "port int 65536": (ID, 65536, None, r"^Port must be from 1 to 65535, got 65536\.$"),
    "port int -1": (ID, -1, None, r"^Port must be from 1 to 65535, got -1\.$"),
    "port float 12.5": (ID, 12.5, None, rf"^{PORT_RULE}, not float"),
    "port float 1e3": (ID, 1e3, None, rf"^{PORT_RULE}, not float"),
    "port True": (ID, True, None, rf"^{PORT_RULE}\.$"),
    "port None": (ID, None, None, rf"^{PORT_RULE}, not NoneType"),
    "port huge int": (ID, 10**5000, None, r"^Port must be from 1 to 65535, got a number too long"),
    "id float": (1.896050410550137e18, 1223, None, r"^Notebook id must be a string of digits"),
    "id negative int": (-1896050410550136833, 1223, None, rf"^{ID_RULE}, got '-18960"),
    "id huge int": (10**5000, 1223, None, r"^Notebook id is too long"),
    "id None": (None, 1223, None, r"^Notebook id must be a string of digits, not NoneType"),
    "id bytes": (b"1896050410550136833", 1223, None, r"^Notebook id must be .*not bytes"),
    "command bytes": (ID, 1223, b"python app.py", r"^Command must be text, not bytes"),
    "command NUL": (ID, 1223, "python\x00app.py", r"^Command must not contain a NUL"),
}

# Lines only the magics read (and the ``scnet`` command will): syntax and options.
LINE_CASES: dict[str, tuple[str, str]] = {
    "unbalanced double quote": (
        f'--id {ID} --port 1223 --command "python app.py',
        r"^Cannot read the magic line: No closing quotation \(check the quotes\)",
    ),
    "unbalanced single quote": (
        f"--id {ID} --port '1223",
        r"^Cannot read the magic line: No closing quotation",
    ),
    "unknown flag": (f"--id {ID} --port 1223 --bogus", r"^Unknown option --bogus; usage: "),
    "unknown short flag": (f"--id {ID} -p 1223", r"^Unknown option -p; usage: "),
    "unknown flag with a value": (
        f"--id {ID} --port 1223 --token {CANARY}",
        r"^Unknown option --token; usage: .* The token is never given on the line",
    ),
    "token as an abbreviated flag": (
        f"--id {ID} --port 1223 --tok={CANARY}",
        r"^Unknown option --tok; usage: .* The token is never given on the line",
    ),
    "token given to --token-stdin": (
        f"--id {ID} --port 1223 --token-stdin={CANARY}",
        r"^Unknown option --token-stdin; usage: .* The token is never given on the line",
    ),
    "stray words": (
        f"--id {ID} --port 1223 python app.py",
        r"^2 unexpected words on the line; usage: %scnet_start \[--id ID\] \[--port PORT\]",
    ),
    "port without its value": (f"--id {ID} --port", r"^Argument --port: expected one argument"),
    "id without its value": ("--id --port 1223", r"^Argument --id: expected one argument"),
    "command without its value": (
        f"--id {ID} --port 1223 --command",
        r"^Argument --command: expected one argument",
    ),
    "no port": (f"--id {ID}", r"^--port is required"),
    "no id and no default": ("--port 1223", r"^No notebook id\. .*--id"),
}

# Settings, by whichever way a front end takes them (argument, %config, prompt, environment).
SETTINGS_CASES: dict[str, tuple[str, object, str]] = {
    "base URL without a scheme": (
        "base_url",
        "scnet.example.cn",
        r"[Bb]ase URL must start with https:// and name a host, got 'scnet\.example\.cn'",
    ),
    "base URL ftp": (
        "base_url",
        "ftp://127.0.0.1:21",
        r"[Bb]ase URL must start with https:// and name a host, got 'ftp://",
    ),
    "base URL plain http to another host": (
        "base_url",
        "http://scnet.example.cn",
        r"[Bb]ase URL must use https:// \(plain http:// is allowed only for loopback\)",
    ),
    "base URL with credentials": (
        "base_url",
        "https://user:hunter2@scnet.example.cn",
        r"[Bb]ase URL must not contain a user name or password",
    ),
    "base URL ftp with credentials": (
        "base_url",
        "ftp://user:hunter2@127.0.0.1",
        r"[Bb]ase URL must (start with https://|not contain a user name)",
    ),
    "base URL with credentials and a bad port": (
        "base_url",
        "https://user:hunter2@scnet.example.cn:99999",
        r"[Bb]ase URL (must not contain a user name|is not a valid URL)",
    ),
    "base URL without a host": ("base_url", "https://", r"[Bb]ase URL must start with https://"),
    "base URL with a bad port": (
        "base_url",
        "https://scnet.example.cn:99999",
        r"[Bb]ase URL is not a valid URL",
    ),
    "token empty": ("token", "", r"[Tt]oken is empty|No SCNET token is set"),
    "token with a newline": (
        "token",
        "eyJhbGciOi.abc\nX-Injected: 1",
        r"[Tt]oken must not contain spaces, line breaks or control characters",
    ),
    "token with a space": ("token", "eyJhbGciOi abc", r"[Tt]oken must not contain spaces"),
    "token non-ASCII": (
        "token",
        "eyJhbGciOi.tökén",
        r"[Tt]oken must contain only ASCII characters",
    ),
    "timeout zero": ("timeout", 0, r"[Tt]imeout must be a positive number of seconds"),
    "timeout negative": ("timeout", -5, r"[Tt]imeout must be a positive number of seconds"),
    "timeout infinite": (
        "timeout",
        float("inf"),
        r"[Tt]imeout must be a positive number of seconds",
    ),
    "timeout text": (
        "timeout",
        "soon",
        r"[Tt]imeout.*(positive number of seconds|expected a float)",
    ),
}


# Where a front end words a rule its own way: (front end, case) -> the pattern it must match.
SAYS_INSTEAD: dict[tuple[str, str], str] = {
    # The form checks for an empty field first, as it does for the notebook id.
    ("form", "port empty"): r"^Port is empty\.$",
    ("form", "port blank"): r"^Port is empty\.$",
    # The command's options are read by argparse, which words its own errors.
    ("cli", "unknown flag"): r"^Unrecognized arguments: --bogus\.$",
    ("cli", "unknown short flag"): r"^The following arguments are required: --port\.$",
    ("cli", "unknown flag with a value"): r"^The token is never taken from the command line ",
    ("cli", "token as an abbreviated flag"): r"^The token is never taken from the command line ",
    ("cli", "token given to --token-stdin"): r"^The token is never taken from the command line ",
    ("cli", "stray words"): r"^Unrecognized arguments: … …\.$",  # values are not echoed
    ("cli", "no port"): r"^The following arguments are required: --port\.$",
    ("cli", "no id and no default"): r"^No notebook id\.$",  # "Give --id" is on the hint line
    ("cli", "token empty"): r"^--token-stdin: standard input has no token\.$",
}

# Cases a front end has no way to express.
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("cli", "unbalanced double quote"): "the shell reads the quotes before scnet runs",
    ("cli", "unbalanced single quote"): "the shell reads the quotes before scnet runs",
    # --token-stdin reads one line, so a line break ends the token; SCNET_TOKEN ("cli-env")
    # can hold one and is checked.
    ("cli", "token with a newline"): "--token-stdin reads one line: a newline ends the token",
    **{
        ("form", case): "the form has no timeout field; it takes the session's setting or "
        "SCNET_TIMEOUT, checked through 'session' and 'env'"
        for case, (setting, _, _) in SETTINGS_CASES.items()
        if setting == "timeout"
    },
}

LINE_FRONT_ENDS = ["magic", "cell", "cli"]  # those that read a line of options

# Each run of the command is a subprocess (a few tenths of a second), so it takes a
# representative subset: one or two values per rule, and per way to give a setting. The full
# tables run through the other front ends, which share the command's validation.
COMMAND_SUBSET: dict[str, list[str]] = {
    "cli": [
        *["port 0", "port 65536", "port -1", "port abc", "port empty", "port 5000 digits"],
        *["id empty", "id with letters", "id negative", "id of 5000 digits"],
        "command blank",
    ],
}
COMMAND_SETTINGS_SUBSET: dict[str, list[str]] = {
    # Arguments: --base-url, --timeout and --token-stdin.
    "cli": [
        *["base URL without a scheme", "base URL ftp", "base URL plain http to another host"],
        *["base URL with credentials", "base URL with a bad port"],
        *["token empty", "token with a newline", "token with a space", "token non-ASCII"],
        *["timeout zero", "timeout negative", "timeout text"],
    ],
    # The environment: every token case (a variable can hold any of them), one per other rule.
    "cli-env": [
        *["base URL without a scheme", "base URL with credentials"],
        *["token empty", "token with a newline", "token with a space", "token non-ASCII"],
        *["timeout zero", "timeout text"],
    ],
}


def says(front_end: str, case: str, default: str) -> str:
    return SAYS_INSTEAD.get((front_end, case), default)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    shared_sandbox.clear_log()
    return shared_sandbox


@pytest.fixture
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    return FRONT_ENDS[request.param](request)


@pytest.fixture
def settings_front_end(request: pytest.FixtureRequest) -> SettingsFrontEnd:
    return SETTINGS_FRONT_ENDS[request.param](request)


def check_refused(
    outcome: Outcome, user_error: type[BaseException], says: str, sandbox: Sandbox
) -> None:
    """One clear line that matches ``says``, shown where the front end shows a refusal, no
    traceback, and nothing sent."""
    assert outcome.result is None, outcome.result
    assert isinstance(outcome.error, user_error), outcome.shown
    line = outcome.shown_message
    assert "\n" not in line and "\r" not in line, line
    assert re.search(says, line), f"{says!r} not in {line!r}"
    check_shown_as_refused(outcome)
    assert_reads_as_sentences(says, shown_error_lines(outcome))
    assert "Traceback" not in outcome.shown
    assert CANARY not in outcome.shown and "hunter2" not in outcome.shown
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("front_end", "case"),
    front_end_cases(FRONT_ENDS, FIELD_CASES, NOT_APPLICABLE, COMMAND_SUBSET),
    indirect=["front_end"],
)
def test_bad_value(front_end: FrontEnd, sandbox: Sandbox, case: str) -> None:
    bad = FIELD_CASES[case]
    target = Target(sandbox.base_url, sandbox.token)
    outcome = front_end.start(target, bad.notebook_id, bad.port, bad.command)
    check_refused(outcome, front_end.user_error, says(front_end.name, case, bad.says), sandbox)
    if front_end.user_error is ScnetError:
        assert isinstance(outcome.error, InvalidInput)


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_bad_python_value(sandbox: Sandbox, case: str) -> None:
    notebook_id, port, command, says = API_CASES[case]
    target = Target(sandbox.base_url, sandbox.token)
    outcome = ApiFrontEnd().start(target, notebook_id, port, command)
    check_refused(outcome, InvalidInput, says, sandbox)


@pytest.mark.parametrize(
    ("front_end", "case"),
    front_end_cases(LINE_FRONT_ENDS, LINE_CASES, NOT_APPLICABLE),
    indirect=["front_end"],
)
def test_bad_line(front_end: FrontEnd, sandbox: Sandbox, case: str) -> None:
    assert front_end.takes_a_line
    line, pattern = LINE_CASES[case]
    outcome = front_end.start_line(Target(sandbox.base_url, sandbox.token), line, "python app.py")
    check_refused(outcome, front_end.user_error, says(front_end.name, case, pattern), sandbox)


def test_command_given_twice_in_the_cell_magic(
    request: pytest.FixtureRequest, sandbox: Sandbox
) -> None:
    cell = FRONT_ENDS["cell"](request)
    outcome = cell.start_line(
        Target(sandbox.base_url, sandbox.token), f"--id {ID} --port 1223 --command x", "python a.py"
    )
    check_refused(
        outcome, cell.user_error, r"either with --command or in the cell, not both", sandbox
    )


@pytest.mark.parametrize("name", ["magic", "cell"])
@pytest.mark.parametrize("option", ["--help", "-h"])
def test_help_asked_as_in_a_shell_names_the_question_mark(
    request: pytest.FixtureRequest, sandbox: Sandbox, name: str, option: str
) -> None:
    magic = FRONT_ENDS[name](request)
    outcome = magic.start_line(Target(sandbox.base_url, sandbox.token), f"--id {ID} {option}", "x")
    pattern = r"^%scnet_start\? shows the help; usage: %scnet_start \[--id ID\]"
    check_refused(outcome, magic.user_error, pattern, sandbox)


@pytest.mark.parametrize(
    ("settings_front_end", "case"),
    front_end_cases(SETTINGS_FRONT_ENDS, SETTINGS_CASES, NOT_APPLICABLE, COMMAND_SETTINGS_SUBSET),
    indirect=["settings_front_end"],
)
def test_bad_setting(settings_front_end: SettingsFrontEnd, sandbox: Sandbox, case: str) -> None:
    setting, value, pattern = SETTINGS_CASES[case]
    assert setting in settings_front_end.settings
    outcome = settings_front_end.start_with(sandbox, setting, value)
    pattern = says(settings_front_end.name, case, pattern)
    check_refused(outcome, settings_front_end.user_error, pattern, sandbox)


def test_every_exception_names_a_front_end_and_a_case() -> None:
    """An entry that no longer matches anything would quietly stop meaning anything."""
    front_ends = {*FRONT_ENDS, *SETTINGS_FRONT_ENDS}
    cases = {*FIELD_CASES, *LINE_CASES, *SETTINGS_CASES}
    for front_end, case in [*SAYS_INSTEAD, *NOT_APPLICABLE]:
        assert front_end in front_ends and case in cases, (front_end, case)
    assert not set(SAYS_INSTEAD) & set(NOT_APPLICABLE)


def test_the_tables_hold_at_least_thirty_cases() -> None:
    cases = len(FIELD_CASES) + len(API_CASES) + len(LINE_CASES) + len(SETTINGS_CASES)
    assert cases >= 30


def test_a_refused_config_value_holds_starts_until_it_is_set_again(
    request: pytest.FixtureRequest, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """%config logs a refused value and keeps the old one; starting must not go ahead on it."""
    monkeypatch.setenv("SCNET_TOKEN", sandbox.token)
    magic = FRONT_ENDS["magic"](request)
    assert isinstance(magic, MagicFrontEnd)
    start = f"%scnet_start --id {ID} --port 1223"
    bad = f"%config ScnetMagics.base_url = {sandbox.base_url + '/x?y'!r}"
    # Neither another class's setting nor another of ours clears the refusal.
    others = ["%config InteractiveShell.autocall = 0", "%config ScnetMagics.short_errors = True"]
    refused = magic.run([bad, *others, start])
    says = r"query or fragment \(refused by %config ScnetMagics\.base_url, which kept its old"
    check_refused(refused, UsageError, says, sandbox)
    fixed = magic.run([f"%config ScnetMagics.base_url = {sandbox.base_url!r}", start])
    assert fixed.result is not None and fixed.result.pending, fixed.shown
    assert len(sandbox.start_requests()) == 1


# Sign-in's address settings, through the three front ends that sign in: (variable, value,
# what the one line says). The platform URL is checked like the login URL, before anything
# is sent to either host.
SIGN_IN_SETTINGS_CASES: dict[str, tuple[str, str, str]] = {
    "platform URL plain http": (
        "SCNET_AC_URL",
        "http://www.scnet.example",
        r"[Pp]latform URL must use https:// .*\(from SCNET_AC_URL\)",
    ),
    "platform URL without a scheme": (
        "SCNET_AC_URL",
        "www.scnet.cn",
        r"[Pp]latform URL must start with https:// .*\(from SCNET_AC_URL\)",
    ),
    "platform URL with credentials": (
        "SCNET_AC_URL",
        "https://user:hunter2@www.scnet.cn",
        r"[Pp]latform URL must not contain a user name or password \(from SCNET_AC_URL\)",
    ),
    "login URL plain http": (
        "SCNET_LOGIN_URL",
        "http://api.scnet.example",
        r"[Ll]ogin URL must use https:// .*\(from SCNET_LOGIN_URL\)",
    ),
}


@pytest.fixture
def sign_in_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox() as sb:
        for name, value in [
            ("SCNET_LOGIN_URL", sb.login_url),
            ("SCNET_AC_URL", sb.ac_url),
            ("SCNET_USER", sb.user),
            ("SCNET_ACCESS_KEY", sb.access_key),
            ("SCNET_SECRET_KEY", sb.secret_key),
        ]:
            monkeypatch.setenv(name, value)
        yield sb


@pytest.mark.parametrize("front_end", ["api", "magic", "cli"])
@pytest.mark.parametrize("case", sorted(SIGN_IN_SETTINGS_CASES))
def test_bad_sign_in_setting(
    request: pytest.FixtureRequest,
    sign_in_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    front_end: str,
    case: str,
) -> None:
    variable, value, says = SIGN_IN_SETTINGS_CASES[case]
    monkeypatch.setenv(variable, value)
    if front_end == "api":
        with pytest.raises(InvalidInput) as info:
            ScnetClient.login(region="昆山")
        line = info.value.user_message()
    elif front_end == "magic":
        magic = FRONT_ENDS["magic"](request)
        assert isinstance(magic, MagicFrontEnd)
        outcome = magic.run(["%scnet_login --region 昆山"])
        assert isinstance(outcome.error, UsageError) and "Traceback" not in outcome.shown
        line = outcome.message
    else:
        run = run_scnet(["login", "--region", "昆山"])
        assert run.returncode == 2 and "Traceback" not in run.stderr
        (line,) = [text for text in run.stderr.splitlines() if text.startswith("scnet: error:")]
    assert "\n" not in line and re.search(says, line), line
    assert "hunter2" not in line and sign_in_sandbox.secret_key not in line
    assert sign_in_sandbox.requests == []
