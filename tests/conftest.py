"""Shared fixtures: an isolated configuration, a running sandbox, a real IPython shell."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from protect_helpers import guard_folder
from sandbox_faults import FaultySandbox
from traitlets.config import Config

from scnet_magic import i18n
from scnet_magic.config import CONFIG_FILE_ENV, ENV_VARS

# The example notebooks' kernels (nbval) start from this process's environment and their saved
# outputs are English (the Chinese quickstart sets its own language): English whatever the
# machine's locale or SCNET_LANG. Tests that need another language set it themselves.
os.environ["SCNET_LANG"] = "en"

# A token-shaped secret that must never show up anywhere.
CANARY = "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOnRydWV9.CANARY-5f3a9c1e7b"
# A secret key that must never show up anywhere either (it only signs).
SECRET_CANARY = "SK-CANARY-2b7f0d9e4a61c3"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests and the example notebooks (nbval) are slow: ``-m "not slow"``, the
    inner loop, leaves them out."""
    for item in items:
        if "browser" in item.keywords or item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


class Terminal(io.StringIO):
    """A standard output that says it is a terminal, as terminal IPython's is."""

    def isatty(self) -> bool:
        return True


def free_port() -> int:
    """A loopback port that nothing listens on (at the moment of the call)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminal_ipython(tmp_path: Path, cwd: Path | None = None) -> Any:
    """Terminal IPython under a pseudo-terminal (pexpect), plain prompts, in English, with a
    config file of its own."""
    import pexpect

    env = {**os.environ, "SCNET_CONFIG_FILE": str(tmp_path / "config.toml"), "SCNET_LANG": "en"}
    return pexpect.spawn(
        str(Path(sys.executable).parent / "ipython"),
        ["--simple-prompt", "--no-banner", "--colors=NoColor", "--HistoryManager.enabled=False"],
        env=env,
        cwd=str(cwd) if cwd else None,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
    )


def said(captured: Any) -> str:
    """What a captured cell said: its printed lines and the text of what it displayed."""
    shown = "".join(output.data.get("text/plain", "") + "\n" for output in captured.outputs)
    return captured.stdout + shown


def localhost_names(monkeypatch: pytest.MonkeyPatch, resolved: bool) -> None:
    """Make this process's resolver answer ``*.localhost`` with loopback (``resolved``, as
    systemd-resolved does, RFC 6761) or not at all (as a bare /etc/hosts does)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            if not resolved:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def no_running_event_loop() -> None:
    """Each test starts outside any event loop, as a user's code does: a fixture that leaves
    one marked running in the main thread (Playwright's sync API does while it is open) would
    make asyncio.run() and IPython's autoawait behave otherwise in every later test."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    raise AssertionError(f"an earlier fixture left {loop!r} running in the main thread")


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No SCNET_* variable from the machine, a config file path of the test's own, and messages
    in English whatever the machine's locale (tests of other languages choose one); no
    process-wide language left behind (a client given ``language=`` sets one)."""
    for name in ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_VARS["language"], "en")
    path = tmp_path / "scnet-config.toml"
    monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    yield path
    i18n.set_language(None)


@pytest.fixture
def guard_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A guard folder of the test's own (SCNET_GUARD_DIR); every guard in it is stopped at the
    end."""
    with guard_folder(tmp_path / "guards", monkeypatch) as folder:
        yield folder


@pytest.fixture(scope="session")
def _shared_sandboxes() -> Iterator[list[FaultySandbox]]:
    """The sandbox the tests share, in a list so that a test that stopped it gets a new one."""
    shared = [FaultySandbox().start()]
    yield shared
    shared[0].stop()


@pytest.fixture
def sandbox(_shared_sandboxes: list[FaultySandbox]) -> FaultySandbox:
    """A running sandbox (execution off), as new: one shared by the tests and reset before
    each, since starting and stopping three servers a test added up."""
    if _shared_sandboxes[0]._stopped:
        _shared_sandboxes[0] = FaultySandbox().start()
    sb = _shared_sandboxes[0]
    sb.reset()
    return sb


@pytest.fixture
def exec_sandbox(tmp_path: Path) -> Iterator[FaultySandbox]:
    workdir = tmp_path / "instance"
    workdir.mkdir()
    with FaultySandbox(execute=True, workdir=workdir, ready_timeout=8.0) as sb:
        yield sb


@pytest.fixture
def login_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultySandbox]:
    """A sandbox whose secret key is the canary, and the environment set to sign in to it
    (and nothing else: no token, no base URL)."""
    with FaultySandbox(secret_key=SECRET_CANARY) as sb:
        monkeypatch.setenv("SCNET_LOGIN_URL", sb.login_url)
        monkeypatch.setenv("SCNET_AC_URL", sb.ac_url)
        monkeypatch.setenv("SCNET_USER", sb.user)
        monkeypatch.setenv("SCNET_ACCESS_KEY", sb.access_key)
        monkeypatch.setenv("SCNET_SECRET_KEY", SECRET_CANARY)
        yield sb


@pytest.fixture
def gateway_sandbox(tmp_path: Path) -> Iterator[FaultySandbox]:
    """Execution on, and a start that answers "pending" at once (like the platform for a slow
    service): waiting for readiness then goes through the gateway's 502 answers."""
    workdir = tmp_path / "instance"
    workdir.mkdir()
    with FaultySandbox(execute=True, workdir=workdir, ready_timeout=0.3) as sb:
        yield sb


@pytest.fixture
def gateway_env(monkeypatch: pytest.MonkeyPatch, gateway_sandbox: FaultySandbox) -> FaultySandbox:
    """The gateway sandbox, with the environment pointing at it and its notebook as default."""
    monkeypatch.setenv("SCNET_BASE_URL", gateway_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", gateway_sandbox.token)
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", gateway_sandbox.notebook_id)
    return gateway_sandbox


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch, sandbox: FaultySandbox) -> FaultySandbox:
    """The sandbox, with the environment pointing at it (as a user's shell would)."""
    monkeypatch.setenv("SCNET_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", sandbox.token)
    return sandbox


@pytest.fixture(scope="session")
def _shell() -> InteractiveShell:
    cfg = Config()
    cfg.HistoryManager.enabled = False
    return InteractiveShell.instance(config=cfg)


@pytest.fixture
def ip(_shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """A real IPython shell with the extension loaded; unloaded afterwards."""
    _shell.run_line_magic("load_ext", "scnet_magic")
    yield _shell
    _shell.run_line_magic("unload_ext", "scnet_magic")
    # %config also stores the values in the shell's own config, from which the next load
    # would take them: forget them, so tests do not inherit each other's settings.
    _shell.config.pop("ScnetMagics", None)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of the package and of urllib3 at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="scnet_magic")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    return caplog
