"""nginx with ``auth_basic`` in front of a service: the peer a user would otherwise configure
to put a password in front of a port, run as a foreground process on loopback for the guard's
benchmark (benchmarks/guard.py).

The configuration follows what Gradio's documentation gives for running behind nginx (HTTP/1.1
to the service, WebSocket upgrades, the forwarding headers, no buffering so that event
streams arrive as sent), with ``auth_basic`` and a password file made by ``htpasswd`` (its
default, apr1-MD5). Everything nginx writes goes to a temporary folder.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

USER = "bench"
PASSWORD = "nginx-bench-password"

CONFIG = """\
user {user};
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            auth_basic "service";
            auth_basic_user_file {prefix}/htpasswd;
            proxy_pass http://127.0.0.1:{service_port};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


def available() -> str | None:
    """Why nginx cannot run here, or None when it can."""
    missing = [tool for tool in ("nginx", "htpasswd") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found (Debian: apt-get install nginx apache2-utils)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within {timeout} s")


@contextlib.contextmanager
def nginx_in_front_of(service_port: int) -> Iterator[tuple[int, str]]:
    """A running nginx in front of ``service_port``; yields its port and its configuration
    (its temporary folder written as ``$PREFIX``)."""
    with tempfile.TemporaryDirectory(prefix="scnet-bench-nginx-") as folder:
        prefix = Path(folder)
        subprocess.run(
            ["htpasswd", "-i", "-c", str(prefix / "htpasswd"), USER],
            input=PASSWORD.encode(),
            check=True,
            capture_output=True,
        )
        port = _free_port()
        # The workers as this user (nginx started as root would run them as nobody, who
        # cannot read the temporary folder); as another user, nginx ignores the line.
        settings = {"user": getpass.getuser(), "port": port, "service_port": service_port}
        (prefix / "nginx.conf").write_text(CONFIG.format(prefix=prefix, **settings))
        process = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", "nginx.conf"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, process)
            yield port, CONFIG.format(prefix="$PREFIX", **settings)
        finally:
            process.terminate()
            process.wait(timeout=10)
