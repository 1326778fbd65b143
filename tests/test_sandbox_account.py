"""The sandbox and the user's own account and folders: where commands run, what a sign-in
saves, how to sign out, and what the errors say about where settings came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ScnetClient
from scnet_magic.config import read_config_file
from scnet_magic.sandbox import Sandbox

from conftest import free_port, said, terminal_ipython
from frontends import run_scnet


def wait_for(path: Path, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


# -- one folder rule: the folder the sandbox was started from ----------------------------------


def test_sandbox_object_runs_commands_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Sandbox(execute=True, ready_timeout=0.2) as sb:
        assert sb.workdir == tmp_path
        with ScnetClient(base_url=sb.base_url, token=sb.token) as client:
            client.start_service(sb.notebook_id, free_port(), "touch ran-here")
        assert wait_for(tmp_path / "ran-here")
    assert tmp_path.is_dir()  # the user's folder is never removed


def test_sandbox_command_runs_commands_in_the_folder_it_was_started_from(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scnet_magic", "sandbox", "--execute"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        exports = dict(line[len("export ") :].strip().split("=", 1) for line in lines)
        with ScnetClient(
            base_url=exports["SCNET_BASE_URL"], token=exports["SCNET_TOKEN"]
        ) as client:
            client.start_service(exports["SCNET_NOTEBOOK_ID"], free_port(), "touch ran-here")
        assert wait_for(tmp_path / "ran-here")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sandbox_magic_takes_a_workdir(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with capture_output():
        sb = ip.run_line_magic("scnet_sandbox", f"--execute --workdir {elsewhere}")
    try:
        assert sb.workdir == elsewhere
        ip.run_line_magic("scnet_start", f'--port {free_port()} --command "touch ran-here"')
        assert wait_for(elsewhere / "ran-here")
        assert not (tmp_path / "ran-here").exists()
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


# -- a sandbox's sign-in and the user's config file ----------------------------------------------

REAL_CONFIG = """# my settings
language = "zh"
token = "real-platform-token-0123456789"
base_url = "https://real.example.cn"
ac_url = "https://www.scnet.cn"
user = "me"
region = "昆山"
"""


def test_signing_in_to_a_sandbox_leaves_the_config_file_alone(
    login_env: Sandbox, isolated_config: Path
) -> None:
    isolated_config.write_text(REAL_CONFIG)
    isolated_config.chmod(0o600)
    run = run_scnet(["login", "--region", "昆山"])
    assert run.returncode == 0, run.stderr
    assert isolated_config.read_text() == REAL_CONFIG
    assert "nothing was saved" in run.stdout and str(isolated_config) in run.stdout

    run = run_scnet(["login", "--region", "昆山", "--save"])  # asked for: saved
    assert run.returncode == 0, run.stderr
    assert read_config_file()["base_url"] == login_env.base_url


def test_logout_removes_the_saved_sign_in_and_says_what_and_where(isolated_config: Path) -> None:
    isolated_config.write_text(REAL_CONFIG)
    isolated_config.chmod(0o600)
    run = run_scnet(["logout"])
    assert run.returncode == 0, run.stderr
    assert str(isolated_config) in run.stdout
    for name in ("token", "base_url", "ac_url", "user", "region"):
        assert name in run.stdout
    assert "real-platform-token" not in run.stdout + run.stderr
    left = read_config_file()
    assert left == {"language": "zh"} and "# my settings" in isolated_config.read_text()
    again = run_scnet(["logout"])
    assert again.returncode == 0 and "Nothing to remove" in again.stdout


def test_scnet_login_forget_signs_the_session_and_the_file_out(
    ip: InteractiveShell, login_env: Sandbox, isolated_config: Path
) -> None:
    try:
        with capture_output():
            ip.run_line_magic("scnet_login", "--region 昆山 --save")
        assert "token" in read_config_file()
        with capture_output() as out:
            ip.run_line_magic("scnet_login", "--forget")
        assert "token" not in read_config_file()
        assert str(isolated_config) in said(out) and "token" in said(out)
        assert ip.find_magic("scnet_login").__self__.session.token is None
    finally:
        ip.find_magic("scnet_login").__self__.session.options.base_url = None


def test_saving_a_sign_in_while_scnet_token_is_exported_warns(
    login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNET_TOKEN", "stale-exported-token-0123456789")
    run = run_scnet(["login", "--region", "昆山", "--save"])
    assert run.returncode == 0, run.stderr
    assert "SCNET_TOKEN" in run.stderr and "unset SCNET_TOKEN" in run.stderr
    assert "stale-exported-token" not in run.stdout + run.stderr


# -- errors say where the token and the address came from ---------------------------------------


def test_connection_refused_names_where_token_and_address_came_from(
    isolated_config: Path,
) -> None:
    # What a sandbox sign-in saved, once the sandbox has stopped: nothing listens there.
    isolated_config.write_text(
        f'token = "old-sandbox-token-0123456789"\nbase_url = "http://127.0.0.1:{free_port()}"\n'
    )
    isolated_config.chmod(0o600)
    run = run_scnet(["notebooks"])
    assert run.returncode == 1
    assert "connection refused" in run.stderr
    source = f"config file {isolated_config}"
    assert f"The token came from {source}, the address from {source}." in run.stderr
    assert "old-sandbox-token" not in run.stderr


def test_a_refused_token_names_the_variable_that_overrode_the_saved_one(
    sandbox: Sandbox, isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_config.write_text(f'token = "{sandbox.token}"\nbase_url = "{sandbox.base_url}"\n')
    isolated_config.chmod(0o600)
    monkeypatch.setenv("SCNET_TOKEN", "stale-exported-token-0123456789")
    run = run_scnet(["notebooks"])
    assert run.returncode == 1 and "10009" in run.stderr
    assert (
        f"The token came from SCNET_TOKEN, the address from config file {isolated_config}."
        in run.stderr
    )
    assert "stale-exported-token" not in run.stderr and sandbox.token not in run.stderr


# -- one JSON shape in every verb --------------------------------------------------------------

TIDY_NOTEBOOK_KEYS = {"id", "name", "status", "custom_port", "command", "raw"}


def test_notebooks_and_url_json_use_the_same_tidy_names(sandbox_env: Sandbox) -> None:
    started = run_scnet(["start", "--id", sandbox_env.notebook_id, "--port", "1223"])
    assert started.returncode == 0, started.stderr
    listed = json.loads(run_scnet(["notebooks", "--json"]).stdout)["notebooks"]
    found = json.loads(run_scnet(["url", "--id", sandbox_env.notebook_id, "--json"]).stdout)
    assert all(set(record) == TIDY_NOTEBOOK_KEYS for record in listed)
    same = next(record for record in listed if record["id"] == sandbox_env.notebook_id)
    assert same == found["instance"]
    assert same["name"] == same["raw"]["notebookName"]
    with_port = [record for record in listed if record["raw"].get("customsizePort")]
    assert with_port, "the sandbox lists instances with a custom port"
    for record in with_port:  # a string in the platform's record, a number in ours
        assert isinstance(record["raw"]["customsizePort"], str)
        assert record["custom_port"] == int(record["raw"]["customsizePort"])
    assert "raw" in found  # the platform's answer, kept in every verb


def readme_jq_lines() -> list[str]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return [line for line in readme.splitlines() if line.startswith("scnet ") and "| jq" in line]


@pytest.mark.slow
def test_the_readme_jq_examples_print_the_running_instances(sandbox_env: Sandbox) -> None:
    lines = readme_jq_lines()
    assert lines
    scnet_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scnet_dir + os.pathsep + os.environ["PATH"]}
    listed = json.loads(run_scnet(["notebooks", "--status", "Running", "--json"]).stdout)
    for line in lines:
        done = subprocess.run(line, shell=True, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0 and done.stdout.strip(), (line, done.stderr)
    first = subprocess.run(
        lines[0], shell=True, capture_output=True, text=True, env=env, timeout=60
    )
    shown, text = [], first.stdout.strip()
    while text:  # jq prints one JSON value after another
        value, end = json.JSONDecoder().raw_decode(text)
        shown.append(value)
        text = text[end:].strip()
    assert shown == listed["notebooks"] and len(shown) == listed["count"] > 1


# -- the sandbox's account in a notebook, and the region menu at a terminal ----------------------


def test_sandbox_magic_shows_its_account_and_signs_in_without_keys(
    ip: InteractiveShell,
) -> None:
    with capture_output() as out:
        sb = ip.run_line_magic("scnet_sandbox", "")
    try:
        assert sb.user in said(out) and sb.access_key in said(out)
        assert sb.secret_key not in said(out) and sb.token not in said(out)
        with capture_output() as signed:  # no SCNET_* keys anywhere, no prompt answered
            ip.run_line_magic("scnet_login", "--region 昆山")
        assert "This session now uses its token" in said(signed), signed.stderr
        assert sb.secret_key not in said(signed) + signed.stderr
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


@pytest.mark.slow
def test_terminal_scnet_login_offers_the_numbered_region_menu(
    login_env: Sandbox, tmp_path: Path
) -> None:
    import pexpect

    shell = terminal_ipython(tmp_path)
    try:
        shell.expect_exact("In [1]: ")
        shell.sendline("%load_ext scnet_magic")
        shell.expect_exact("In [2]: ")
        shell.sendline("%scnet_login")  # the account has two regions; no --region given
        shell.expect_exact("regions:")
        shell.expect_exact("Region number (1-2): ")
        shell.sendline("2")
        shell.expect_exact("This session now uses its token")
        shell.expect_exact("In [3]: ")
        assert "choose one with --region" not in (shell.before or "")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
