"""What the ``--protect`` tests share: a guard folder of the test's own (every guard started in
it is stopped afterwards), and the visit a stranger and the owner make to a protected URL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from guard_helpers import basic

from scnet_magic.guard import GUARD_HEADER, auth, list_guards, stop_guard

# Not ASCII, with a colon and spaces, and a marker the audits look for.
PASSWORD = "PW-CANARY-9c41: 电池 staple"
PAGE = "hello.txt"
PAGE_TEXT = "hello from behind the guard\n"


@contextlib.contextmanager
def guard_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Guard records in ``folder`` for one test; every guard in it is stopped at the end."""
    monkeypatch.setenv("SCNET_GUARD_DIR", str(folder))
    monkeypatch.delenv("SCNET_GUARD_PASSWORD", raising=False)
    try:
        yield folder
    finally:
        for record in list_guards():
            stop_guard(record.port)


def serve_command(port: int) -> str:
    """The user's command: a plain web server on ``port``, run from the instance's folder."""
    return f"{sys.executable} -m http.server {port} --bind 127.0.0.1"


def write_page(workdir: Path) -> None:
    (workdir / PAGE).write_text(PAGE_TEXT, encoding="utf-8")


def session_cookie(login: requests.Response) -> str:
    """The ``Cookie`` header value a successful sign-in gives a browser.

    Set by hand: requests keeps a Secure cookie for https only, and the sandbox speaks http.
    """
    return f"{auth.COOKIE_NAME}={login.cookies[auth.COOKIE_NAME]}"


def sign_in(url: str, password: str = PASSWORD) -> str:
    """Sign in at a protected URL; the session's ``Cookie`` header value."""
    login = requests.post(
        f"{url.rstrip('/')}/.scnet-guard/login",
        data={"password": password, "next": "/"},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 303, login.text
    return session_cookie(login)


def visit(url: str, password: str = PASSWORD) -> None:
    """A protected external URL, as a stranger and as the owner meet it: 401 without a
    credential (the login page for a browser), the page after signing in with the cookie,
    200 with HTTP Basic."""
    base = url.rstrip("/")
    plain = requests.get(f"{base}/{PAGE}", timeout=10)
    assert plain.status_code == 401, plain.text
    assert plain.headers["WWW-Authenticate"].startswith("Basic")
    assert GUARD_HEADER in plain.headers and PAGE_TEXT not in plain.text
    page = requests.get(f"{base}/{PAGE}", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 401
    assert 'type="password"' in page.text and PAGE_TEXT not in page.text
    login = requests.post(
        f"{base}/.scnet-guard/login",
        data={"password": password, "next": f"/{PAGE}"},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 303 and login.headers["Location"] == f"/{PAGE}"
    cookie = session_cookie(login)
    after = requests.get(base + login.headers["Location"], headers={"Cookie": cookie}, timeout=10)
    assert after.status_code == 200 and after.text == PAGE_TEXT
    signed = requests.get(f"{base}/{PAGE}", headers=basic(password), timeout=10)
    assert signed.status_code == 200 and signed.text == PAGE_TEXT
    wrong = requests.get(f"{base}/{PAGE}", headers=basic(password + "x"), timeout=10)
    assert wrong.status_code == 401


@contextlib.contextmanager
def web_server(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A plain web server serving ``folder`` on ``127.0.0.1:port``, in a session of its own;
    ended at the end unless something else ended it first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@contextlib.contextmanager
def plain_server(folder: Path, port: int) -> Iterator[int]:
    """A web server that is no guard (it signs nothing), for the URL to lead to."""
    with web_server(folder, port):
        yield port
