"""A real JupyterLab or Notebook 7 server for the browser tests, isolated from the machine.

The server runs in a process group of its own, with a random token, on 127.0.0.1, with
temporary Jupyter and IPython directories (no config of the machine or the user leaks in) and
without any SCNET_* variable: the notebook starts its own sandbox. Every process it starts
(kernels, and the services the sandbox starts from a kernel) inherits a marker variable, so
that leftovers can be found after shutdown whatever process group they moved to.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each server's processes carry MARKER=<run id> in their environment.
MARKER = "BROWSER_TEST_RUN_ID"
APPS = {
    # app name: (module run with -m, URL path of a notebook)
    "lab": ("jupyterlab", "/lab/tree/{name}"),
    "notebook": ("notebook", "/notebooks/{name}"),
}
# User settings written into the temporary config dir. Without windowing every cell stays in
# the DOM, so what the tests look for cannot be missing just because it is scrolled away.
USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass
class Leftover:
    pid: int
    cmdline: str


class JupyterServer:
    """``python -m jupyterlab`` or ``python -m notebook`` serving ``root``."""

    def __init__(self, app: str, root: Path, home: Path) -> None:
        self.app = app
        self.root = root
        self.home = home
        self.port: int | None = None  # chosen by the system when the server binds
        self.token = secrets.token_hex(24)
        self.run_id = secrets.token_hex(8)
        self.log_path = home / "server.log"
        self.runtime_dir = home / "runtime"
        self.proc: subprocess.Popen[bytes] | None = None
        self.closed = False

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """The address a user opens; the token logs the browser in (a cookie from then on)."""
        return f"{self.base_url}{APPS[self.app][1].format(name=name)}?token={self.token}"

    def environment(self) -> dict[str, str]:
        machine_only = ("SCNET_", "JUPYTER", "JPY_", "IPYTHON")
        env = {k: v for k, v in os.environ.items() if not k.startswith(machine_only)}
        dirs = {
            "JUPYTER_CONFIG_DIR": self.home / "config",
            "JUPYTER_DATA_DIR": self.home / "data",
            "JUPYTER_RUNTIME_DIR": self.runtime_dir,
            "IPYTHONDIR": self.home / "ipython",
            # The scnet user config file lives under here: none of the user's.
            "XDG_CONFIG_HOME": self.home / "xdg-config",
        }
        for name, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        # As in an activated virtualenv: `python` in a start command is this Python.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        env[MARKER] = self.run_id
        # The tests click English buttons and read English results, whatever the locale.
        env["SCNET_LANG"] = "en"
        return env

    def _write_user_settings(self) -> None:
        settings_dir = self.home / "config" / "lab" / "user-settings"
        for relative, values in USER_SETTINGS.items():
            path = settings_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 90.0) -> JupyterServer:
        env = self.environment()
        self._write_user_settings()
        module = APPS[self.app][0]
        argv = [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            # Port 0: the system picks a free port when the server binds (no race); the
            # server writes the one it got into its runtime file.
            "--ServerApp.port=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            # No PyPI queries from the extension manager.
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            argv.append("--allow-root")  # containers and CI run as root
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{module} exited with status {self.proc.returncode} before answering; "
                    f"its log ends with:\n{self.log_tail()}"
                )
            if self.port is None:
                self.port = self._port_from_runtime_file()
            if self.port is not None:
                try:
                    status = self.api("GET", "/api/status", timeout=2.0)
                except (OSError, urllib.error.URLError):
                    status = None
                if isinstance(status, dict):
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{module} did not answer /api/status within {timeout:.0f} s; "
                    f"its log ends with:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def _port_from_runtime_file(self) -> int | None:
        for path in self.runtime_dir.glob("jpserver-*.json"):
            try:
                return int(json.loads(path.read_text())["port"])
            except (OSError, ValueError, KeyError):
                return None  # being written; read it on the next round
        return None

    def api(self, method: str, path: str, timeout: float = 10.0) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def save_artifacts(self, folder: Path) -> list[Path]:
        path = folder / f"{self.app}-server.log"
        shutil.copyfile(self.log_path, path)
        return [path]

    # -- looking into the kernel -------------------------------------------------------------

    def kernel_expression(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate ``expression`` in the one running kernel, silently (nothing on the page).

        A second client on the kernel's own ports asks for a user expression: the page never
        sees the request nor the answer.
        """
        from jupyter_client.blocking.client import BlockingKernelClient

        kernels = self.api("GET", "/api/kernels")
        if len(kernels) != 1:
            raise RuntimeError(f"expected one running kernel, found {len(kernels)}")
        client = BlockingKernelClient()
        client.load_connection_file(str(self.runtime_dir / f"kernel-{kernels[0]['id']}.json"))
        client.start_channels()
        try:
            client.wait_for_ready(timeout=timeout)
            msg_id = client.execute(
                "", silent=True, store_history=False, user_expressions={"value": expression}
            )
            reply = client.get_shell_msg(timeout=timeout)
            while reply["parent_header"].get("msg_id") != msg_id:
                reply = client.get_shell_msg(timeout=timeout)
        finally:
            client.stop_channels()
        value = reply["content"]["user_expressions"]["value"]
        if value.get("status") != "ok":
            raise RuntimeError(f"{expression!r} failed in the kernel: {value.get('evalue')}")
        return ast.literal_eval(value["data"]["text/plain"])

    # -- shutting down -----------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> list[Leftover]:
        """Shut down like a user would (kernels first), then return what is still running."""
        if self.proc is None:
            return []
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            try:
                # Shuts the kernels down cleanly, so the sandbox stops what it started.
                self.api("POST", "/api/shutdown", timeout=5.0)
            except (OSError, urllib.error.URLError):
                _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10.0)
        # A kernel's own shutdown (and with it the sandbox's) may lag a moment behind.
        deadline = time.monotonic() + 10.0
        while (leftovers := processes_marked(self.run_id)) and time.monotonic() < deadline:
            time.sleep(0.2)
        _signal_group(proc.pid, signal.SIGKILL)
        for leftover in leftovers:
            _kill(leftover.pid)
        return leftovers


def processes_marked(run_id: str) -> list[Leftover]:
    """Live (not zombie) processes whose environment carries ``MARKER=run_id``."""
    needle = f"{MARKER}={run_id}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if state not in ("Z", "X"):
            found.append(Leftover(int(entry.name), cmdline.strip()))
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
