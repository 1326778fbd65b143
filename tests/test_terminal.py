"""The magics and the ``scnet`` command as a terminal user meets them: real ``ipython`` and
``scnet`` processes, some under a pseudo-terminal of 60 and 160 columns."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sandbox_faults import FaultySandbox as Sandbox

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # No SCNET_ settings, and the size the terminal says, not COLUMNS.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCNET_") and k not in ("COLUMNS", "LINES")
    }
    return {
        **env,
        "SCNET_CONFIG_FILE": str(tmp_path / "config.toml"),
        "SCNET_LANG": "en",
        "IPYTHONDIR": str(tmp_path / "ipython"),
        **extra,
    }


def _in_a_terminal(
    program: str,
    args: list[str],
    env: dict[str, str],
    *,
    columns: int,
    answers: tuple[str, ...] = (),
) -> tuple[str, int]:
    """What ``program`` shows on a pseudo-terminal ``columns`` wide, and its exit status."""
    import pexpect

    child = pexpect.spawn(
        program, args, env=env, encoding="utf-8", timeout=60, dimensions=(40, columns)
    )
    for answer in answers:
        child.sendline(answer)
    shown = child.read()
    child.close()
    return shown, int(child.exitstatus if child.exitstatus is not None else -1)


def _ipython(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ipython"), "--no-banner", "--colors=NoColor", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_an_ipy_script_prints_the_start_result_and_its_url(tmp_path: Path) -> None:
    port = _free_port()
    script = tmp_path / "start.ipy"
    script.write_text(
        "%load_ext scnet_magic\n"
        "%scnet_sandbox --execute\n"
        f'%scnet_start --port {port} --command "{sys.executable} -m http.server {port}" --wait 30\n'
        "%scnet_url\n"
        "%scnet_sandbox --stop\n"
    )
    run = _ipython(tmp_path, str(script))
    assert "Waiting up to 30 s" in run.stdout, run.stdout + run.stderr
    after_wait = run.stdout.split("Waiting up to 30 s", 1)[1]
    assert "ready" in after_wait.lower(), run.stdout
    assert "http://" in after_wait  # the start's URL
    assert after_wait.count("http://") >= 2, run.stdout  # and %scnet_url's


def test_ipython_c_shows_an_earlier_result_before_a_later_error(tmp_path: Path) -> None:
    code = (
        "%load_ext scnet_magic\n%scnet_sandbox\nr = %scnet_start --port 8080\n%scnet_url --id 12\n"
    )
    run = _ipython(tmp_path, "-c", code)
    out = run.stdout + run.stderr
    start, error = out.find("port 8080 of notebook"), out.find("ApiError")
    assert -1 < start < error, out


def test_wait_counts_from_the_answer_not_from_the_send(tmp_path: Path) -> None:
    # The executing sandbox answers after up to ready_timeout seconds (as the platform checks
    # the port before answering): --wait 3 still polls for 3 s after that.
    from scnet_magic.sandbox import Sandbox

    from frontends import run_scnet

    port = _free_port()
    command = f"sleep 3 && {sys.executable} -m http.server {port}"
    with Sandbox(execute=True, workdir=tmp_path, ready_timeout=2.0) as sb:
        env = {"SCNET_BASE_URL": sb.base_url, "SCNET_TOKEN": sb.token}
        args = ["start", "--id", sb.notebook_id, "--port", str(port), "--command", command]
        run = run_scnet([*args, "--wait", "3"], env)
    assert run.returncode == 0, run.stderr
    assert "ready after" in run.stdout.lower(), run.stdout


TERMINATED = "1896050410550136834"  # the sandbox's stopped instance


def test_protect_asks_for_no_password_for_a_stopped_instance(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = _env(tmp_path, SCNET_BASE_URL=sandbox.base_url, SCNET_TOKEN=sandbox.token)
    args = ["start", "--id", TERMINATED, "--port", "1223", "--protect"]
    shown, code = _in_a_terminal(str(BIN / "scnet"), args, env, columns=160)
    assert code == 1, shown
    assert "is Terminated" in shown and "--boot" in shown, shown
    assert "password" not in shown.lower()


def test_protect_in_a_magic_asks_for_no_password_for_a_stopped_instance(
    ip: InteractiveShell, sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": asked.append(prompt) or "")
    with pytest.raises(UsageError, match="is Terminated") as caught:
        ip.run_line_magic("scnet_start", f"--id {TERMINATED} --port 1223 --protect")
    assert asked == [] and "--boot" in str(caught.value)


def _widest(shown: str) -> int:
    """The widest line a terminal shows, in columns."""
    from scnet_magic.arguments import columns

    return max(columns(line) for line in shown.replace("\r\n", "\n").split("\n"))


def _widest_progress(shown: str) -> int:
    """The widest of the versions of a line rewritten in place ("\r" and erase to its end)."""
    from scnet_magic.arguments import columns

    versions = [part.split("\r")[0].split("\n")[0] for part in shown.split("\r\x1b[K")[1:]]
    return max(columns(version) for version in versions)


@pytest.mark.parametrize("columns", [60, 160])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_help_fits_the_terminal_and_ends_with_examples(
    tmp_path: Path, columns: int, language: str
) -> None:
    for verb in ("start", "guard"):
        shown, code = _in_a_terminal(
            str(BIN / "scnet"),
            ["--lang", language, verb, "--help"],
            _env(tmp_path),
            columns=columns,
        )
        assert code == 0, shown
        assert _widest(shown) <= columns, shown
        # As Chinese is typeset: no line starts with closing punctuation.
        starts = [line.strip()[:1] for line in shown.replace("\r\n", "\n").split("\n")]
        assert not set(starts) & set("，。、；：）"), shown
        examples = shown.split("示例：" if language == "zh" else "Examples:")[-1]
        assert f"scnet {verb} --" in examples, shown


@pytest.mark.parametrize("columns", [60, 160])
def test_chinese_progress_lines_do_not_stack(tmp_path: Path, columns: int) -> None:
    from scnet_magic.sandbox import Sandbox as Plain

    with Plain() as sb:
        sb.boot_seconds = 1.5
        env = _env(tmp_path, SCNET_LANG="zh", SCNET_TOKEN=sb.token)
        env |= {"SCNET_BASE_URL": sb.base_url, "SCNET_AC_URL": sb.ac_url}
        args = ["start", "--id", TERMINATED, "--port", "1223", "--boot", "--wait", "1"]
        shown, _code = _in_a_terminal(str(BIN / "scnet"), args, env, columns=columns)
    assert "实例 1896050410550136834" in shown, shown
    assert "正在等待" in shown or "等待" in shown, shown
    assert _widest_progress(shown) < columns, shown


def test_argparse_speaks_chinese(tmp_path: Path) -> None:
    from frontends import run_scnet

    missing = run_scnet(["--lang", "zh", "start"])
    assert missing.returncode == 2 and "用法：" in missing.stderr
    assert "缺少必需的参数：--port" in missing.stderr, missing.stderr
    unknown = run_scnet(["--lang", "zh", "bogus"])
    assert "无效的选择" in unknown.stderr and "invalid choice" not in unknown.stderr
    value = run_scnet(["--lang", "zh", "start", "--port"])
    assert "需要一个值" in value.stderr, value.stderr


def test_argparse_speaks_chinese_in_the_magics(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    with pytest.raises(UsageError, match="参数 --port：需要一个值"):
        ip.run_line_magic("scnet_start", "--port")


@pytest.mark.slow
def test_a_password_typed_for_password_stdin_at_a_terminal_is_not_shown(
    tmp_path: Path, guard_dir: Path
) -> None:
    import pexpect

    env = _env(tmp_path, SCNET_GUARD_DIR=str(guard_dir))
    args = ["guard", "--port", str(_free_port()), "--password-stdin"]
    child = pexpect.spawn(str(BIN / "scnet"), args, env=env, encoding="utf-8", timeout=60)
    child.expect("hidden")  # a hidden prompt discards what was typed before it
    child.sendline("typed-canary-8f2e")
    shown = child.before + child.after + child.read()
    child.close()
    assert child.exitstatus == 0, shown
    assert "typed-canary-8f2e" not in shown
