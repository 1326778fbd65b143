"""The public surface: what ``import scnet_magic`` offers is exactly ``__all__``, every
documented exception and returned type is in it, tab completion offers the lazy names, and a
result does not change once made (nothing is stashed into it when it is shown)."""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import scnet_magic
from scnet_magic import errors
from scnet_magic.sandbox import Sandbox

README = Path(__file__).resolve().parent.parent / "README.md"

PUBLIC = {
    # exceptions
    "ApiError",
    "CommandEnded",
    "ConfigError",
    "GuardFailed",
    "GuardUnreachable",
    "HttpError",
    "InstanceError",
    "InstanceTimeout",
    "InvalidInput",
    "LoginError",
    "MalformedResponse",
    "NotReady",
    "RequestTimeout",
    "ScnetError",
    "TransportError",
    # what the calls return
    "Notebook",
    "NotebookList",
    "Readiness",
    "ServiceUrl",
    "StartResult",
    "StopResult",
    "TokenState",
    # the calls
    "Sandbox",
    "ScnetClient",
    "form",
    "start_service",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
}


def test_all_is_the_public_surface() -> None:
    assert set(scnet_magic.__all__) == PUBLIC
    assert len(scnet_magic.__all__) == len(PUBLIC)  # no name twice


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_is_reachable(name: str) -> None:
    assert getattr(scnet_magic, name) is not None


def test_dir_offers_the_public_names_and_only_them() -> None:
    listed = dir(scnet_magic)
    assert "ScnetClient" in listed and "start_service" in listed  # lazy, before first use
    assert "Any" not in listed and "TYPE_CHECKING" not in listed
    assert set(listed) == PUBLIC


def test_every_exception_of_the_package_is_exported() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ScnetError)
    }
    assert defined <= set(scnet_magic.__all__)


def test_every_exception_and_type_the_readme_names_is_exported() -> None:
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z]+(?:Error|Timeout|Failed|Unreachable|Ready))`", text))
    named |= set(re.findall(r"# ([A-Z][A-Za-z]+): \.", text))  # "# Readiness: .elapsed"
    assert {"GuardFailed", "GuardUnreachable", "InstanceTimeout", "Readiness"} <= named
    assert named - set(dir(builtins)) <= set(scnet_magic.__all__)  # ValueError is Python's


def test_the_readme_starts_services_with_the_one_public_call() -> None:
    text = README.read_text(encoding="utf-8")
    assert "from scnet_magic import service" not in text
    assert "from scnet_magic.validation import" not in text
    assert "start_service(" in text
    parameters = inspect.signature(scnet_magic.start_service).parameters
    for option in ("wait", "boot", "protect"):
        assert option in parameters and f"{option}=" in text


def test_results_do_not_change_once_made(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    with capture_output():
        result = ip.run_line_magic("scnet_start", f"--id {sandbox_env.notebook_id} --port 1223")
        found = ip.run_line_magic("scnet_url", f"--id {sandbox_env.notebook_id}")
    for shown in (result, found):
        assert list(vars(shown)) == [field.name for field in dataclasses.fields(shown)]
        with pytest.raises(dataclasses.FrozenInstanceError):
            shown.url = "https://elsewhere.example"
